#pragma once
// Analytics reads from a streaming standby (db.read_url): how far behind it is, what an answer
// read there may claim, and the small detached actor that keeps watching.
//
// The replay horizon H of a standby is the latest instant such that every transaction the
// primary committed before H is visible there. It is the larger of two lower bounds:
//   - pg_last_xact_replay_timestamp(): the primary's commit time of the last transaction
//     replayed; WAL is replayed in order, so every commit before it is visible. (Commits whose
//     timestamps were taken within the same microseconds may reach WAL in the other order —
//     the same granularity as the primary's own fresh_as_of, now() at statement start.)
//   - primary samples: the monitor reads (now(), pg_current_wal_insert_lsn()) on the primary
//     every tick; a transaction acknowledged before that now() wrote its commit record below
//     that LSN. If the standby's pg_last_wal_replay_lsn() has reached a sample's LSN, every
//     commit before the sample's time is visible. This is what keeps an idle, caught-up
//     standby at lag 0 although no commit moves the replay timestamp.
// A server that is not in recovery (a promoted standby, or read_url naming the primary) has
// no horizon of its own: it is current.
//
// A read job on the standby reads the replay position first, then runs the query (whose
// snapshot is taken later, so it sees at least that much) and lowers fresh_as_of to H. It
// never uses the primary's watermark board (the standby may not have replayed those
// watermarks yet): it reads the watermarks the standby has.
//
// Lag = now − H on the standby (0 when not in recovery); the monitor publishes it, and the DB
// pool sends standby-capable reads there while it is reachable and lag <= db.read_max_lag.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include <caf/replies_to.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "config/settings.hpp"
#include "core/interfaces.hpp"
#include "db/live_tail.hpp"

namespace joule::db {

class session;

/// "16/B374D848" -> 64-bit WAL position; nullopt if malformed.
std::optional<std::uint64_t> parse_lsn(const std::string& text);

/// A standby's replay position as read on it.
struct replay_position {
  bool in_recovery = true;
  std::optional<std::uint64_t> replay_lsn;   // pg_last_wal_replay_lsn()
  std::optional<std::int64_t> replay_ts;     // pg_last_xact_replay_timestamp(), µs
  std::int64_t now = 0;                      // the standby's now(), µs
};

/// The replication state shared by the lag monitor (writer) and the read jobs and the pool
/// (readers). Thread-safe.
class replica_state {
public:
  explicit replica_state(std::chrono::milliseconds max_lag, std::size_t max_samples = 256)
    : max_lag_(max_lag), max_samples_(max_samples) {}

  /// A primary sample: at `at` (µs, the primary's now()) its WAL insert position was `lsn`.
  void add_primary_sample(std::int64_t at, std::uint64_t lsn);

  /// The replay horizon for a position (see above); nullopt: unknown (nothing proves any
  /// instant visible). For a server not in recovery: its own now().
  std::optional<std::int64_t> horizon(const replay_position& p) const;

  /// Lag in seconds for a position: now − horizon (not below 0), +inf when unknown.
  double lag_seconds(const replay_position& p) const;

  /// Whether a position is close enough to serve reads (lag <= max_lag).
  bool fresh_enough(const replay_position& p) const;

  /// The monitor's latest verdict: reachable and lag (seconds, +inf when unreachable), given
  /// at `at`.
  void publish(bool reachable, double lag,
               std::chrono::steady_clock::time_point at = std::chrono::steady_clock::now());
  /// Whether reads go to the standby now: the latest verdict said so and is recent (see
  /// verdict_ttl; a monitor stuck in libpq must not keep reads on a standby that vanished).
  bool usable(std::chrono::steady_clock::time_point now = std::chrono::steady_clock::now()) const;
  /// How long a verdict holds: 2 x max_lag, at least 5 s (a monitor tick may wait out a
  /// connect timeout to each server).
  std::chrono::milliseconds verdict_ttl() const;
  double lag() const { return lag_.load(std::memory_order_relaxed); }
  bool reachable() const { return reachable_.load(std::memory_order_relaxed); }
  std::chrono::milliseconds max_lag() const { return max_lag_; }

  /// {"read_target":"standby"|"primary","standby":"none"|"reachable"|"unreachable",
  ///  "lag_seconds":..|null,"read_max_lag_seconds":..} for /admin/status; `configured`:
  /// whether db.read_url names a standby at all.
  std::string status_json(bool configured) const;

private:
  std::chrono::milliseconds max_lag_;
  std::size_t max_samples_;
  mutable std::mutex mu_;
  std::deque<std::pair<std::int64_t, std::uint64_t>> samples_;  // (at, lsn), oldest first
  std::atomic<bool> usable_{false};
  std::atomic<std::int64_t> published_at_{0};  // steady clock, ns since its epoch
  std::atomic<bool> reachable_{false};
  std::atomic<double> lag_{0};
};

/// Reads the replay position of the server `s` is connected to (one round trip).
replay_position read_replay_position(session& s);

/// Thrown by a standby read job that must not answer there (horizon unknown or older than
/// db.read_max_lag, a subject the standby does not know yet, rollups not replayed far enough):
/// the pool runs the job's primary variant instead. Slug "standby_behind", errc unavailable.
failure standby_behind(const std::string& why);
bool is_standby_behind(const caf::error& e);

/// For a read job on the standby: the horizon its answer may claim (an upper bound for
/// fresh_as_of), or throws failure_error{standby_behind} when the standby must not answer.
/// Nullopt: the server is not in recovery (no bound).
std::optional<std::int64_t> standby_read_bound(session& s, const replica_state& replica);

/// The settled part of a live energy answer (db/live_tail.hpp settled_energy) read on the
/// standby: only when the standby's household_5m watermark has reached `hi` (new buckets below
/// the live snapshot's watermark are not versioned) and its versions of those hours are
/// exactly `versions` (the live snapshot's, so the rows are the ones the snapshot names);
/// otherwise throws failure_error{standby_behind}. On a server not in recovery: as is.
settled_part settled_energy_on_standby(session& s, const std::string& household,
                                       std::int64_t step, std::int64_t lo, std::int64_t hi,
                                       const std::string& versions);

// --- the lag monitor

using replica_monitor_actor = caf::typed_actor<
    /// Internal: sample primary and standby once more.
    caf::reacts_to<tick_atom>,
    /// Status as JSON (replica_state::status_json plus ticks).
    caf::replies_to<status_atom>::with<std::string>>;

struct replica_monitor_config {
  std::string primary_url;
  std::string standby_url;
  std::chrono::milliseconds interval{250};
  std::chrono::milliseconds connect_timeout{2000};
  std::shared_ptr<replica_state> replica;
};

struct replica_monitor_state {
  static inline const char* name = "replica_monitor";
  replica_monitor_config cfg;
  std::unique_ptr<session> primary;
  std::unique_ptr<session> standby;
  std::uint64_t ticks = 0;
};

/// Spawn detached: it blocks in libpq.
replica_monitor_actor::behavior_type
replica_monitor(replica_monitor_actor::stateful_pointer<replica_monitor_state> self,
                replica_monitor_config cfg);

/// The monitor for the settings (db.url, db.read_url; a tick of read_max_lag / 8, between
/// 50 ms and 1 s).
replica_monitor_actor spawn_replica_monitor(caf::actor_system& sys, const config::settings& s,
                                            std::shared_ptr<replica_state> replica);

} // namespace joule::db
