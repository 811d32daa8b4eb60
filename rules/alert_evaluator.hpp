#pragma once
// One evaluator per enabled rule: feeds each new bucket through the pure state machine and
// persists every meaningful change (with its notifications) through the store before it
// counts. While a save is in flight, feed batches are dropped: the feed re-sends the latest
// buckets every cycle, so nothing is lost, and the order of state changes stays simple.
// A firing alert with repeat_interval_sec is notified again by a timer (same incident id,
// new alert id, "repeat": n); the time of the latest notification is persisted, so a restart
// keeps the rhythm.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <utility>
#include <string>
#include <vector>

#include "rules/alert_interfaces.hpp"

namespace joule::metrics {
class histogram;
} // namespace joule::metrics

namespace joule::rules {

/// Result of running one batch through the state machine (pure).
struct batch_result {
  eval_state next;
  std::vector<notification> notes;
  int evaluated = 0;
  /// Something other than last_bucket changed: must be stored before it counts. (Advancing
  /// only last_bucket needs no write: re-evaluating such a bucket after a restart gives the
  /// same state again.)
  bool must_persist = false;
  /// The newest observation (for repeat notifications): its bucket and value.
  std::optional<std::pair<std::int64_t, double>> last_observation;
  /// Wall clock (µs since the epoch) the repeat timer is computed from: now_micros in
  /// production, the test coordinator's simulated time in deterministic tests.
  std::int64_t (*now)() = nullptr;
};

/// Runs `batch` through evaluate_bucket; `new_id` names firing/resolved notifications.
batch_result evaluate_batch(const alert_rule& rule, const eval_state& state,
                            const feed_batch& batch, const std::function<std::string()>& new_id);

struct alert_evaluator_state {
  static inline const char* name = "alert_evaluator";
  alert_rule rule;
  eval_state state;
  alert_store_actor store;
  std::chrono::milliseconds save_timeout{5000};
  bool saving = false;
  std::uint64_t batches = 0;
  std::uint64_t dropped_batches = 0;  // arrived while a save was in flight
  /// The newest batch that arrived while a save was in flight (evaluated when it ends), and
  /// the batch being saved (evaluated again a second after a failed save). Pointers: at
  /// 100,000 evaluators the bytes per evaluator count.
  std::unique_ptr<feed_batch> deferred, in_flight;
  std::uint64_t evaluations = 0;
  std::uint64_t fired = 0;
  std::uint64_t resolved = 0;
  std::uint64_t conflicts = 0;
  std::uint64_t save_failures = 0;
  metrics::histogram* lag = nullptr;
  /// Names the current repeat timer; older timers carry another number and are ignored.
  std::uint64_t repeat_timer = 0;
  std::uint64_t repeats_sent = 0;
  /// Bucket and value of the newest observation (repeat notifications show them).
  std::optional<std::pair<std::int64_t, double>> last_observation;
  /// Wall clock (µs since the epoch) the repeat timer is computed from: now_micros in
  /// production, the test coordinator's simulated time in deterministic tests.
  std::int64_t (*now)() = nullptr;
};

/// `initial` is the persisted state; `store` persists changes; a save not answered within
/// `save_timeout` counts as failed (the state is kept and the buckets are evaluated again).
alert_evaluator_actor::behavior_type
alert_evaluator(alert_evaluator_actor::stateful_pointer<alert_evaluator_state> self,
                alert_rule rule, eval_state initial, alert_store_actor store,
                std::chrono::milliseconds save_timeout);

/// The same with the wall clock `now` (tests: simulated time).
alert_evaluator_actor::behavior_type
alert_evaluator_clocked(alert_evaluator_actor::stateful_pointer<alert_evaluator_state> self,
                        alert_rule rule, eval_state initial, alert_store_actor store,
                        std::chrono::milliseconds save_timeout, std::int64_t (*now)());

} // namespace joule::rules
