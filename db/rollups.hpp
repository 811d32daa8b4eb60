#pragma once
// Continuous-aggregate semantics on plain PostgreSQL: rollup definitions and the refresh
// that keeps them equal to a GROUP BY over raw rows (see README "Rollups").

#include <cstdint>
#include <string>
#include <vector>

namespace joule::db {

class session;

struct rollup_spec {
  std::string name;        // rollup_state.name, e.g. "device_1m"
  std::string table;       // materialised table
  std::int64_t width = 0;  // bucket width in µs
  std::string width_sql;   // the same width as an SQL interval literal
  std::string key_column;  // device_id or household_id
  bool has_max = false;    // stores power_w_max
};

/// The three rollups of the design document.
const std::vector<rollup_spec>& rollups();
/// nullptr if unknown.
const rollup_spec* find_rollup(const std::string& name);

struct refresh_policy_us {
  std::int64_t start_offset = 0;
  std::int64_t end_offset = 0;
  std::int64_t max_batch = 0;  // most raw time materialised per call
};

struct refresh_report {
  bool skipped = false;           // another refresher holds the lock
  bool more_pending = false;      // catch-up was cut at max_batch: run again soon
  std::int64_t watermark_before = 0;  // 0 = none
  std::int64_t watermark_after = 0;
  std::int64_t db_now = 0;
  std::int64_t materialised_us = 0;   // time span re-aggregated
  std::int64_t rows_written = 0;
  int ranges = 0;
  int invalidations_consumed = 0;
  int invalidations_kept = 0;         // older than start_offset: wait for a manual refresh
  double duration_ms = 0;
};

/// One policy cycle: materialise new raw data up to now - end_offset (from the watermark,
/// or from the first reading on first run) and every bucket invalidated by late writes
/// within [now - start_offset, watermark). Serialised across processes by an advisory lock;
/// a concurrent caller returns with skipped = true.
refresh_report refresh_cycle(session& s, const rollup_spec& spec, const refresh_policy_us& p);

/// Manual refresh (TimescaleDB's refresh_continuous_aggregate): re-materialises every bucket
/// in [start, end) regardless of start_offset; waits for the lock. Buckets past
/// now - end_offset are not materialised.
refresh_report refresh_range(session& s, const rollup_spec& spec, const refresh_policy_us& p,
                             std::int64_t start, std::int64_t end);

} // namespace joule::db
