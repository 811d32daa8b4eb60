#pragma once
// The alert manager: owns the bucket feed, the state store and one evaluator per rule this
// instance owns (all linked to it). Several instances on one database share the rules
// (rules/ownership.hpp): a heartbeat row per instance, rendezvous hashing over the live ones,
// and a lease row per rule so that exactly one live instance evaluates each rule. Rule
// changes arrive from the local API (at once), from NOTIFY joule_rule_changes (every
// instance, rules/rule_listener in alerts_module.cpp) and from a periodic full compare of
// versions; changes carry the rule's version, so a stale one never undoes a newer one. A rule
// taken over starts from the state its previous owner stored, and the feed catches up the
// buckets that closed meanwhile. Any crash below it takes the subtree down and the
// supervisor restarts the manager, which rebuilds everything from PostgreSQL.

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "rules/alert_interfaces.hpp"
#include "rules/bucket_feed.hpp"

namespace joule::rules {

struct alert_manager_config {
  bucket_feed_config feed;
  std::chrono::milliseconds save_timeout{5000};
  std::chrono::milliseconds load_retry{2000};
  std::chrono::milliseconds catch_up{15 * 60 * 1000};  // alerts.catch_up (0: none)
  std::string instance_id;                  // cluster.instance_id (generated when empty)
  std::chrono::milliseconds lease{5000};    // alerts.lease
  std::chrono::milliseconds reconcile{30000};  // full compare of rule versions
  std::chrono::milliseconds check_delay{20};   // NOTIFYs collected into one read
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
    std::int64_t version = 0;  // of the definition the evaluator has
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
      version = r.version;
    }
  };
  alert_manager_config cfg;
  std::function<db_pool_actor()> pool;
  bucket_feed_actor feed;
  alert_store_actor store;
  /// Owned rules (lease held, evaluator running), with the version their evaluator has.
  std::unordered_map<std::string, running_rule> running;
  /// Newest version and switch seen per rule id (deleted: INT64_MAX, disabled), owned or not,
  /// and when it was learned (a full compare forgets only what it could have seen).
  struct known_rule {
    std::int64_t version = 0;
    bool enabled = false;
    std::chrono::steady_clock::time_point seen{};
  };
  std::unordered_map<std::string, known_rule> known;
  bool loaded = false;  // the first full compare answered
  std::uint64_t load_failures = 0;
  // --- ownership
  std::vector<std::string> live;          // live instances (sorted), from the last heartbeat
  bool have_live = false;
  bool reset_leases = true;               // the next heartbeat drops every lease we hold
  std::unordered_set<std::string> held;   // leases held (a superset of running)
  std::chrono::steady_clock::time_point last_ok{};  // start of the last good heartbeat
  bool heartbeat_busy = false, full_busy = false, check_busy = false, leases_busy = false;
  bool plan_dirty = true;                 // instances changed: plan every rule again
  std::unordered_set<std::string> plan_ids;  // rules changed: plan only these
  bool caught_up = false;                 // the start-up catch-up was requested
  std::vector<std::string> refresh;       // held rules whose definition changed: re-read
  std::vector<std::string> checks;        // rule ids announced, not read yet
  bool check_scheduled = false;
  bool reconcile_again = false;
  std::uint64_t fenced = 0, heartbeat_failures = 0, lease_failures = 0, handovers = 0;
};

/// `pool` returns the live DB pool; `nudge` wakes the notifier after notifications were
/// stored.
alert_manager_actor::behavior_type
alert_manager(alert_manager_actor::stateful_pointer<alert_manager_state> self,
              alert_manager_config cfg, std::function<db_pool_actor()> pool,
              std::function<void()> nudge);

} // namespace joule::rules
