#pragma once
// Continuous-aggregate semantics on plain PostgreSQL: rollup definitions and the refresh
// that keeps them equal to a GROUP BY over raw rows (see README "Rollups").

#include <cstdint>
#include <string>
#include <vector>

#include "config/rollups.hpp"

namespace joule::db {

class session;

/// A rollup as the refresh needs it: config::rollup_defs() in µs and SQL terms.
struct rollup_spec {
  std::string name;        // rollup_state.name, e.g. "device_1m"
  std::string table;       // materialised table
  std::int64_t width = 0;  // bucket width in µs
  std::string width_sql;   // the same width as an SQL interval literal
  std::string key_column;  // device_id or household_id
  bool has_max = false;    // stores power_w_max
  std::string source;      // empty: raw telemetry; else the rollup it merges
  std::string read_view;   // real-time read view
};

/// The rollup whose watermark the live tail reads raw rows above (db/live_tail.cpp): its
/// refresh keeps the log rows it consumes in live_tail_consumed for a while (migration 0017),
/// so the tail sees every write statement exactly once across refreshes.
inline constexpr const char* live_tail_rollup = "device_1m";
/// How long a refresh keeps a batch of consumed log rows: a tail whose last snapshot is
/// older than that re-reads the raw tail whole (tails cycle every second).
inline constexpr const char* live_tail_consumed_retention = "10 minutes";

/// One spec per entry of config::rollup_defs(), in the same order.
const std::vector<rollup_spec>& rollups();
/// nullptr if unknown.
const rollup_spec* find_rollup(const std::string& name);
/// The spec of any definition (tests use definitions that are not in the table).
rollup_spec make_spec(const config::rollup_def& def);

/// What the migrations must have provided for every defined rollup, checked (and its
/// rollup_state row written) after they ran: the state row with the same bucket width and
/// source, the table rollup_<name> with the state columns, and the read view. Throws naming
/// the rollup and the missing piece. Returns the rollup_state names no definition has
/// (left in place: an older server may still refresh them; the caller warns).
std::vector<std::string> ensure_rollup_schema(session& s,
                                              const std::vector<rollup_spec>& specs = rollups());

struct refresh_policy_us {
  std::int64_t start_offset = 0;
  std::int64_t end_offset = 0;
  std::int64_t max_batch = 0;  // most raw time one policy cycle materialises (0: no bound)
};

struct refresh_report {
  bool skipped = false;           // another refresher holds the lock
  bool more_pending = false;      // new or late data was cut at max_batch: run again soon
  std::int64_t watermark_before = 0;  // 0 = none
  std::int64_t watermark_after = 0;
  std::int64_t db_now = 0;
  std::int64_t materialised_us = 0;   // time span re-aggregated
  std::int64_t rows_written = 0;
  std::int64_t source_rows = 0;       // rows aggregated (raw readings or source rollup rows)
  std::int64_t backlog_us = 0;        // time span left to materialise after this cycle (new
                                      // data up to now - end_offset, late ranges deferred)
  int ranges = 0;
  int invalidations_consumed = 0;
  int invalidations_kept = 0;         // log rows older than start_offset, merged, waiting for
                                      // a manual refresh (all of them, not only this cycle's)
  int invalidations_deferred = 0;     // late ranges inside the window left for the next
                                      // cycle because max_batch was used up
  double duration_ms = 0;
};

/// One policy cycle: materialise new raw data up to now - end_offset (from the watermark,
/// or from the first reading on first run) and every bucket invalidated by late writes
/// within [now - start_offset, watermark), at most max_batch of raw time in all (at least
/// one bucket): the rest stays in the log and more_pending is set. Log ranges older than
/// start_offset are merged into as few rows as possible and left for a manual refresh.
/// Serialised across processes by an advisory lock; a concurrent caller returns with
/// skipped = true.
refresh_report refresh_cycle(session& s, const rollup_spec& spec, const refresh_policy_us& p);

/// Manual refresh (TimescaleDB's refresh_continuous_aggregate): re-materialises every bucket
/// in [start, end) regardless of start_offset and max_batch (the caller bounds the range:
/// `joule refresh` cuts it into max_batch pieces); waits for the lock. Buckets past
/// now - end_offset are not materialised.
refresh_report refresh_range(session& s, const rollup_spec& spec, const refresh_policy_us& p,
                             std::int64_t start, std::int64_t end);

} // namespace joule::db
