#pragma once
// The production alert_store_actor: each state_change becomes one db_job on the DB pool
// (rules/rule_sql.cpp save_state), so evaluators never block and never see SQL. After a
// change with notifications is stored it nudges the notifier, so delivery starts at once
// instead of at the next outbox poll.

#include <chrono>
#include <functional>

#include "rules/alert_interfaces.hpp"

namespace joule::rules {

struct alert_store_state {
  static inline const char* name = "alert_store";
  /// The live pool handle (the supervisor may have restarted it).
  std::function<db_pool_actor()> pool;
  /// Called after notifications were stored.
  std::function<void()> nudge;
  std::chrono::milliseconds job_timeout{3000};
  std::uint64_t saves = 0;
  std::uint64_t conflicts = 0;
  std::uint64_t failures = 0;
};

alert_store_actor::behavior_type
alert_store(alert_store_actor::stateful_pointer<alert_store_state> self,
            std::function<db_pool_actor()> pool, std::function<void()> nudge,
            std::chrono::milliseconds job_timeout);

} // namespace joule::rules
