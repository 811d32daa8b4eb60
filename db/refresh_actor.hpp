#pragma once
// One rollup's refresh schedule: every schedule_interval run a policy cycle on the rollup's
// own DB worker; run again at once while catch-up is cut into batches.

#include <chrono>
#include <memory>
#include <string>

#include "config/settings.hpp"
#include "core/interfaces.hpp"
#include "db/rollups.hpp"
#include "db/watermarks.hpp"

namespace joule::db {

struct refresh_config {
  std::string rollup;                               // device_1m, household_5m, device_1h
  refresh_policy_us policy;
  std::chrono::milliseconds schedule_interval{30000};
  std::chrono::milliseconds job_timeout{std::chrono::hours(1)};
  /// Where the read path learns new watermarks (may be null).
  std::shared_ptr<watermark_board> board;
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
};

/// Spawns the refresh actor of rollup `name` with its own (detached) worker, from its
/// refresh.<name>.* policy and refresh.max_batch.
refresh_actor spawn_refresh(caf::actor_system& sys, const config::settings& s,
                            const std::string& name, std::shared_ptr<watermark_board> board);

refresh_actor::behavior_type refresh(refresh_actor::stateful_pointer<refresh_state> self,
                                     refresh_config cfg, db_worker_actor worker);

} // namespace joule::db
