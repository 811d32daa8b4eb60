#pragma once
// One rollup's refresh schedule: every schedule_interval run a policy cycle on the rollup's
// own DB worker; run again at once while catch-up is cut into batches.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "config/settings.hpp"
#include "core/interfaces.hpp"
#include "db/rollups.hpp"
#include "db/watermarks.hpp"

namespace joule::db {

/// Slots for rollups catching up at once in one process (refresh.catchup_parallel), shared
/// by the refresh actors. A free slot goes to the waiting rollup with the highest priority
/// (the refresh actors use the bucket width: coarse rollups materialise far more time per row
/// written and serve the long windows, so reads get cheap soonest). A slot, and a place in
/// the queue, is a token: dropping it (also when its actor dies) gives it back.
class catchup_gate {
public:
  explicit catchup_gate(int slots) : state_(std::make_shared<shared>()) { state_->free = slots; }

  /// Takes a place in the queue (so that a rollup spawned later but of higher priority is
  /// not overtaken by one whose first cycle happened to run first).
  void enqueue(std::shared_ptr<void>& ticket, std::int64_t priority) {
    if (ticket)
      return;
    std::lock_guard<std::mutex> lock{state_->m};
    auto it = state_->waiting.insert(priority);
    auto state = state_;
    ticket = std::shared_ptr<void>(state.get(), [state, it](void*) {
      std::lock_guard<std::mutex> l{state->m};
      state->waiting.erase(it);
    });
  }

  /// A slot, or null while none is free or a rollup of higher priority waits. `ticket` holds
  /// the caller's place in the queue while it waits (keep it until a slot is granted).
  std::shared_ptr<void> try_take(std::shared_ptr<void>& ticket, std::int64_t priority) {
    std::shared_ptr<void> released;  // dropped after the lock is released
    std::lock_guard<std::mutex> lock{state_->m};
    auto& st = *state_;
    if (!ticket) {
      auto it = st.waiting.insert(priority);
      auto state = state_;
      ticket = std::shared_ptr<void>(state.get(), [state, it](void*) {
        std::lock_guard<std::mutex> l{state->m};
        state->waiting.erase(it);
      });
    }
    if (st.free <= 0 || *st.waiting.begin() > priority)
      return nullptr;
    --st.free;
    // Leave the queue: the ticket's deleter takes the lock, so drop it after this scope.
    released = std::move(ticket);
    auto state = state_;
    return std::shared_ptr<void>(state.get(), [state](void*) {
      std::lock_guard<std::mutex> l{state->m};
      ++state->free;
    });
  }

private:
  struct shared {
    std::mutex m;
    int free = 0;
    std::multiset<std::int64_t, std::greater<std::int64_t>> waiting;
  };
  std::shared_ptr<shared> state_;
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
  std::shared_ptr<void> queued;  // place in the gate's queue while waiting for a slot
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
