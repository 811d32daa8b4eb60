#pragma once
// The live tail (issue 9): the newest buckets of every device and household, read from the
// raw tail above the watermarks in a few batched queries every `live.interval`, and held in
// memory as one immutable snapshot that readers pick up without a message (an atomically
// swapped shared_ptr). A dashboard poll joins its settled part (rollup buckets under the
// watermark, cached by version) with the live part from here: no PostgreSQL round trip per
// request in steady state. The alert bucket feed reads the same snapshots (one feed, two
// consumers).
//
// Everything in a snapshot comes from one REPEATABLE READ transaction: the watermarks, the
// versions of settled hours, the pending late writes and the buckets are consistent with each
// other, and `db_now` (the transaction's start) is the instant up to which committed writes
// are reflected, except where a pending late write caps it (see fresh_cap).

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <caf/typed_actor.hpp>
#include <caf/replies_to.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "config/settings.hpp"
#include "core/interfaces.hpp"

namespace joule::db {

class session;

/// One bucket as mergeable partial state (sums, counts, maxima).
struct live_bucket {
  std::int64_t start = 0;  // µs
  std::optional<double> energy_sum;
  std::optional<double> power_sum;
  std::int64_t power_count = 0;
  std::optional<double> power_max;

  void add(const live_bucket& o);
};

/// A late write logged below a rollup's watermark that no refresh has reflected yet.
struct pending_write {
  std::string rollup;
  std::int64_t lo = 0;  // [lo, hi] as logged (raw timestamps, inclusive)
  std::int64_t hi = 0;
  std::int64_t logged_at = 0;
  /// The households the write touched (empty: unknown, i.e. any household).
  std::vector<std::string> households;
};

struct live_snapshot {
  std::uint64_t seq = 0;
  /// Start of the reading transaction (µs, database clock).
  std::int64_t db_now = 0;
  /// When this process received it (staleness check).
  std::chrono::steady_clock::time_point taken{};
  std::optional<std::int64_t> wm_device_1m, wm_household_5m, wm_device_1h;
  /// Per rollup name: UTC hour (µs) -> version of its settled rows (rollup_versions), for
  /// hours since `versions_from`. An hour without an entry was never rewritten.
  std::unordered_map<std::string, std::map<std::int64_t, std::int64_t>> versions;
  std::int64_t versions_from = 0;
  std::vector<pending_write> pending;
  /// Registered devices and their households; the households that have devices.
  std::unordered_map<std::string, std::string> device_household;
  std::unordered_set<std::string> households;
  /// Household -> its registered devices (sorted), shared by the snapshots between changes of
  /// the device list (device answers: top devices).
  std::shared_ptr<const std::unordered_map<std::string, std::vector<std::string>>>
      household_devices;

  /// Household 5 min buckets from `household_lo` on (ascending), complete for every
  /// household; valid only when `households_ok`. Below the household 5 min watermark they
  /// are exactly its rollup rows (from at least live_settled_overlap below it).
  bool households_ok = false;
  std::int64_t household_lo = 0;
  std::unordered_map<std::string, std::vector<live_bucket>> household_5m;
  /// Device 1 min buckets from `device_lo` on (ascending); valid only when `devices_ok`.
  bool devices_ok = false;
  std::int64_t device_lo = 0;
  std::unordered_map<std::string, std::vector<live_bucket>> device_1m;
  /// Household 1 min buckets from `household_1m_lo` on (the alert feed's 1 min rules).
  std::int64_t household_1m_lo = 0;
  std::unordered_map<std::string, std::vector<live_bucket>> household_1m;

  int queries = 0;
  std::size_t bucket_count = 0;

  /// "hour:version,..." of `rollup` over the hours [floor(lo, 1 h), hi): the version of a
  /// settled part over [lo, hi); the same text settled_energy reads with its data.
  std::string version_text(const std::string& rollup, std::int64_t lo, std::int64_t hi) const;
  /// The earliest log time of a pending late write of `rollup` overlapping [lo, hi), or
  /// nothing: everything committed before it is reflected in that rollup's rows there.
  std::optional<std::int64_t> fresh_cap(const std::string& rollup, std::int64_t lo,
                                        std::int64_t hi) const;
  /// Whether a pending late write of `rollup` overlapping [lo, hi) may touch `household`:
  /// such an answer is read from the database, which serves those buckets from exact sources
  /// (late data visible in seconds), instead of from stale settled parts.
  bool late_touches(const std::string& rollup, std::int64_t lo, std::int64_t hi,
                    const std::string& household) const;
};

using live_snapshot_ptr = std::shared_ptr<const live_snapshot>;

/// The current snapshot: written by the tail actor, read by any thread without a lock.
class live_tail_holder {
public:
  live_snapshot_ptr get() const { return std::atomic_load_explicit(&snap_, std::memory_order_acquire); }
  /// Publishes `s`; returns the snapshot it replaces.
  live_snapshot_ptr set(live_snapshot_ptr s) {
    return std::atomic_exchange_explicit(&snap_, std::move(s), std::memory_order_acq_rel);
  }
  /// The snapshot if it was taken within `max_age`, else null (the tail is behind or the
  /// database unreachable: callers answer from the database instead).
  live_snapshot_ptr fresh(std::chrono::steady_clock::duration max_age) const {
    auto s = get();
    if (!s || std::chrono::steady_clock::now() - s->taken > max_age)
      return nullptr;
    return s;
  }

private:
  live_snapshot_ptr snap_;
};

/// Oldest hour of rollup_versions a snapshot holds: settled parts reaching further back are
/// answered from the database.
constexpr std::int64_t live_versions_span = 8LL * 24 * 3600 * 1'000'000;
/// Household 5 min rollup rows a snapshot holds below the watermark at least: a settled part
/// that ends within this span of the watermark is extended from the snapshot in memory, and
/// one whose hours a late range rewrote there is rebuilt from it (12 buckets per household).
constexpr std::int64_t live_settled_overlap = 60LL * 60 * 1'000'000;
/// Raw time above the device 1 min watermark the tail reads at most: a watermark further
/// behind (catch-up, refresh failing) turns the live path off until it catches up.
constexpr std::int64_t live_max_raw_span = 15LL * 60 * 1'000'000;

/// The tail's memory between cycles: what it read last time, so that a cycle reads only
/// what changed (issue 9, incremental tail). Rollup rows are read once per range as the
/// watermarks pass (again only when a refresh rewrote one of their hours: versions); raw rows
/// above the device 1 min watermark are folded per committed write statement, found through
/// the invalidation log (every statement on telemetry logs a row in its own transaction, so a
/// row not seen before is a statement committed since the last snapshot, in commit order
/// whatever the order of `ts`): a plain INSERT's rows are folded by their xmin, any other
/// write (UPDATE, DELETE, TRUNCATE, ...) re-reads the minutes it names. A device 1 min
/// refresh consumes log rows the tail may not have seen; it keeps them for a while in
/// live_tail_consumed, numbered by batch (migration 0017), where the tail finds those it
/// missed, and a watermark that moved only drops the raw buckets it passed. The raw tail is
/// re-read whole only on the first cycle, after a failed one, when the tail fell more than the
/// consumed rows' retention behind, or after log rows were removed unaccounted (TRUNCATE or
/// DELETE of the log by hand).
/// Used by one thread at a time (the tail's own DB worker); not copyable.
class live_tail_reader {
public:
  live_tail_reader();
  ~live_tail_reader();
  live_tail_reader(const live_tail_reader&) = delete;
  live_tail_reader& operator=(const live_tail_reader&) = delete;

  /// Reads the changes since the last cycle (everything on the first one, or after a failed
  /// cycle) and builds a complete snapshot from the held state. Throws on database errors,
  /// after forgetting its state (the next cycle starts over).
  live_snapshot cycle(session& s, std::int64_t grace_us = 2'000'000);
  /// Forgets everything: the next cycle reads the whole tail.
  void reset();

  /// What the latest cycle did, for metrics and tests.
  struct stats {
    bool full_raw = false;       // re-read the raw tail whole
    std::size_t raw_rows = 0;    // grouped raw rows received (folded or re-read)
    std::size_t rollup_rows = 0; // rollup rows received
    std::size_t statements = 0;  // new log rows (committed write statements) seen
    std::size_t consumed = 0;    // of them, found among rows a refresh consumed
    std::size_t reread_ranges = 0;
    double read_ms = 0;   // the transaction (PostgreSQL and receiving rows)
    double build_ms = 0;  // building the snapshot from what is held
  };
  const stats& last() const;

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

/// Reads one snapshot from scratch (a handful of statements in one read-only REPEATABLE READ
/// transaction): what an incremental reader's cycles must always equal. `grace` is the alert
/// feed's closed-bucket grace: device and household 1 min buckets are held from the last
/// closed 5 min bucket on, whatever the watermarks.
live_snapshot read_live_tail(session& s, std::int64_t grace_us = 2'000'000);

/// The settled part of a household energy series: household_5m rows of [lo, hi) summed into
/// `step` buckets, and the version text of the hours they span, read by one statement.
struct settled_part {
  std::string versions;
  std::vector<std::pair<std::int64_t, std::optional<double>>> points;
};
settled_part settled_energy(session& s, const std::string& household, std::int64_t step,
                            std::int64_t lo, std::int64_t hi);

// --- the actor

using live_tail_actor = caf::typed_actor<
    /// Internal: time for the next cycle.
    caf::reacts_to<tick_atom>,
    /// Status as JSON (cycles, failures, last duration, buckets, snapshot age).
    caf::replies_to<status_atom>::with<std::string>>;

struct live_tail_config {
  std::chrono::milliseconds interval{1000};
  std::chrono::milliseconds job_timeout{5000};
  std::int64_t grace_us = 2'000'000;
  std::shared_ptr<live_tail_holder> holder;
};

struct live_tail_state {
  static inline const char* name = "live_tail";
  live_tail_config cfg;
  db_worker_actor worker;
  bool running = false;
  std::uint64_t seq = 0;
  std::uint64_t cycles = 0;
  std::uint64_t failures = 0;
  double last_duration_ms = 0;
  std::size_t last_buckets = 0;
  double last_read_ms = 0;
  double last_build_ms = 0;
  bool last_full_raw = false;
  /// Replaced snapshots: released by a later cycle on the DB worker's own thread once no
  /// reader holds them (freeing a few hundred thousand buckets must not stall a CAF worker
  /// that serves polls).
  std::vector<live_snapshot_ptr> retired;
  /// The incremental reader: used only inside the cycle's job, on the DB worker's thread
  /// (reading and building the snapshot never run on a CAF worker that serves polls).
  std::shared_ptr<live_tail_reader> reader = std::make_shared<live_tail_reader>();
};

/// Runs a cycle every interval on `worker` (its own connection) and publishes each snapshot;
/// a failed cycle withdraws the snapshot, so readers fall back to the database at once.
live_tail_actor::behavior_type live_tail(live_tail_actor::stateful_pointer<live_tail_state> self,
                                         live_tail_config cfg, db_worker_actor worker);

/// The tail with its own detached DB worker, from the server settings (live.interval).
live_tail_actor spawn_live_tail(caf::actor_system& sys, const config::settings& s,
                                std::shared_ptr<live_tail_holder> holder);

} // namespace joule::db
