#pragma once
// The alert manager: owns the bucket feed, the state store and one evaluator per enabled
// rule (all linked to it). At start it loads the enabled rules and their persisted states;
// afterwards the API tells it about every rule change, which it applies live. Changes carry
// the rule's version, so a change that raced with the start-up load is never undone by it.
// Any crash below it takes the subtree down and the supervisor restarts the manager, which
// rebuilds everything from PostgreSQL.

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <unordered_map>

#include "rules/alert_interfaces.hpp"
#include "rules/bucket_feed.hpp"

namespace joule::rules {

struct alert_manager_config {
  bucket_feed_config feed;
  std::chrono::milliseconds save_timeout{5000};
  std::chrono::milliseconds load_retry{2000};
  std::chrono::milliseconds catch_up{15 * 60 * 1000};  // alerts.catch_up (0: none)
};

struct alert_manager_state {
  static inline const char* name = "alert_manager";
  /// What the manager needs of a running rule: its feed subscription. The definition
  /// itself lives in the evaluator only (one copy per rule matters at 100,000 rules).
  struct running_rule {
    scope_kind scope = scope_kind::device;
    std::string scope_id;
    std::int64_t window_us = minute_us;
    metric_kind metric = metric_kind::power_w_avg;
    no_data_policy no_data = no_data_policy::keep;
    alert_evaluator_actor evaluator;
    bool subscribed_like(const alert_rule& r) const {
      return scope == r.scope && scope_id == r.scope_id && window_us == r.window_us &&
             metric == r.metric && no_data == r.no_data;
    }
    void take(const alert_rule& r) {
      scope = r.scope;
      scope_id = r.scope_id;
      window_us = r.window_us;
      metric = r.metric;
      no_data = r.no_data;
    }
  };
  alert_manager_config cfg;
  std::function<db_pool_actor()> pool;
  bucket_feed_actor feed;
  alert_store_actor store;
  /// Enabled rules with their evaluators.
  std::unordered_map<std::string, running_rule> running;
  /// Newest version seen per rule id (INT64_MAX once deleted), enabled or not.
  std::unordered_map<std::string, std::int64_t> versions;
  bool loaded = false;
  std::uint64_t load_failures = 0;
};

/// `pool` returns the live DB pool; `nudge` wakes the notifier after notifications were
/// stored.
alert_manager_actor::behavior_type
alert_manager(alert_manager_actor::stateful_pointer<alert_manager_state> self,
              alert_manager_config cfg, std::function<db_pool_actor()> pool,
              std::function<void()> nudge);

} // namespace joule::rules
