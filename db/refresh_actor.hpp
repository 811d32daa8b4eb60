#pragma once
// One rollup's refresh schedule: every schedule_interval run a policy cycle on the rollup's
// own DB worker; run again at once while catch-up is cut into batches.

#include <atomic>
#include <chrono>
#include <memory>
#include <string>

#include "config/settings.hpp"
#include "core/interfaces.hpp"
#include "db/rollups.hpp"
#include "db/watermarks.hpp"

namespace joule::db {

/// Slots for rollups catching up at once in one process (refresh.catchup_parallel), shared
/// by the refresh actors. A slot is a token: dropping it (also when its actor dies) frees it.
class catchup_gate {
public:
  explicit catchup_gate(int slots) : free_(std::make_shared<std::atomic<int>>(slots)) {}
  /// A slot, or null when all are taken.
  std::shared_ptr<void> try_take() {
    auto cur = free_->load();
    do {
      if (cur <= 0)
        return nullptr;
    } while (!free_->compare_exchange_weak(cur, cur - 1));
    // A non-null pointer whose deleter gives the slot back (the gate may be gone by then).
    return std::shared_ptr<void>(free_.get(), [free = free_](void*) { free->fetch_add(1); });
  }

private:
  std::shared_ptr<std::atomic<int>> free_;
};

/// Catch-up progress of one rollup (the current or last catch-up).
struct catchup_progress {
  bool active = false;
  std::chrono::steady_clock::time_point started{};
  double elapsed_s = 0;           // wall time so far (batches and pacing waits)
  std::int64_t materialised_us = 0;  // time span materialised so far
  std::int64_t remaining_us = 0;     // time span left (from the last batch's report)
  std::int64_t source_rows = 0;      // rows aggregated so far
  int batches = 0;
  double rows_per_s() const { return elapsed_s > 0 ? source_rows / elapsed_s : 0; }
  /// Seconds left at the rate so far (materialised time per wall second); -1: unknown.
  double eta_s() const {
    if (remaining_us <= 0)
      return 0;
    if (materialised_us <= 0 || elapsed_s <= 0)
      return -1;
    return static_cast<double>(remaining_us) / (materialised_us / elapsed_s);
  }
};

struct refresh_config {
  std::string rollup;                               // device_1m, household_5m, device_1h
  refresh_policy_us policy;
  std::chrono::milliseconds schedule_interval{30000};
  std::chrono::milliseconds job_timeout{std::chrono::hours(1)};
  /// Where the read path learns new watermarks (may be null).
  std::shared_ptr<watermark_board> board;
  /// Catch-up pacing: busy share of wall time in % (100: no pauses), and the process's slots
  /// for rollups catching up at once (null: no limit).
  int catchup_duty = 100;
  std::shared_ptr<catchup_gate> gate;
};

struct refresh_state {
  static inline const char* name = "refresh";
  refresh_config cfg;
  db_worker_actor worker;
  bool running = false;
  std::uint64_t cycles = 0;
  std::uint64_t failures = 0;
  std::uint64_t skipped = 0;
  refresh_report last;
  // Catch-up: the first cycle, and every cycle after one that left work for later, runs in a
  // slot of the gate, paced by catchup_duty.
  bool catching_up = true;
  std::shared_ptr<void> slot;
  catchup_progress catchup;
  std::chrono::steady_clock::time_point last_log{};
};

/// Spawns the refresh actor of rollup `name` with its own (detached) worker, from its
/// refresh.<name>.* policy and refresh.max_batch.
refresh_actor spawn_refresh(caf::actor_system& sys, const config::settings& s,
                            const std::string& name, std::shared_ptr<watermark_board> board);

refresh_actor::behavior_type refresh(refresh_actor::stateful_pointer<refresh_state> self,
                                     refresh_config cfg, db_worker_actor worker);

} // namespace joule::db
