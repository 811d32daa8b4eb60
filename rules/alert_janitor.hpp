#pragma once
// The alerts' housekeeping actor: once per `release_interval` it releases alerts whose
// silence ended (a firing incident notified once more, rules/rule_sql.cpp release_silenced);
// (cheaply: only when a silence ended since the last check, or when told that a silence was
// deleted or a rule changed, or every full_interval); once per `cleanup_interval` it deletes notifications (not pending) and silences older than
// alerts.retention, in batches, so the outbox does not grow forever. SQL runs as db_jobs.

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>

#include "rules/alert_interfaces.hpp"

namespace joule::rules {

struct alert_janitor_config {
  std::chrono::milliseconds release_interval{1000};
  std::chrono::milliseconds cleanup_interval{600000};
  std::chrono::milliseconds retention{30LL * 24 * 3600 * 1000};
  std::chrono::milliseconds job_timeout{5000};
  int batch = 10000;  // rows per DELETE
  /// Silenced alerts are read in full this often at least (silences deleted or rules changed
  /// by another instance); in between only when a silence ended or this instance was told.
  std::chrono::milliseconds full_interval{10000};
  int release_batch = 1000;  // alerts released per pass at most
};

struct alert_janitor_state {
  static inline const char* name = "alert_janitor";
  alert_janitor_config cfg;
  std::function<db_pool_actor()> pool;
  std::function<void()> nudge;  // wakes the notifier after releases
  bool busy = false;
  std::chrono::steady_clock::time_point next_cleanup{};
  std::chrono::steady_clock::time_point next_full{};
  std::optional<std::int64_t> last_check;  // database time of the latest release check
  bool full_next = true;
  std::uint64_t release_passes = 0;  // checks that had to read the silenced alerts
  std::uint64_t released = 0, deleted = 0, failures = 0;
};

alert_janitor_actor::behavior_type
alert_janitor(alert_janitor_actor::stateful_pointer<alert_janitor_state> self,
              alert_janitor_config cfg, std::function<db_pool_actor()> pool,
              std::function<void()> nudge);

} // namespace joule::rules
