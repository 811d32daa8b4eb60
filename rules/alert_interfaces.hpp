#pragma once
// The alerts feature's actor contract: atoms, message types and typed interfaces of the
// manager, bucket feed, evaluators, state store and notifier. Kept here rather than in
// actors/interfaces.hpp so the feature can change without touching the shared header.

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/interfaces.hpp"
#include "rules/evaluation.hpp"
#include "rules/payload.hpp"
#include "rules/rule.hpp"

namespace joule::rules {

// --- atoms (at most 10 characters; distinct from actors/interfaces.hpp)
using rule_set_atom = caf::atom_constant<caf::atom("ruleset")>;
using rule_drop_atom = caf::atom_constant<caf::atom("ruledrop")>;
using subscribe_atom = caf::atom_constant<caf::atom("feedsub")>;
using unsubscribe_atom = caf::atom_constant<caf::atom("feedunsub")>;
using nudge_atom = caf::atom_constant<caf::atom("nudge")>;
using repeat_atom = caf::atom_constant<caf::atom("repeat")>;
using resend_atom = caf::atom_constant<caf::atom("amresend")>;
using catch_up_atom = caf::atom_constant<caf::atom("catchup")>;
using rule_check_atom = caf::atom_constant<caf::atom("rulecheck")>;
using reconcile_atom = caf::atom_constant<caf::atom("reconcile")>;
using instance_atom = caf::atom_constant<caf::atom("instance")>;
using heartbeat_atom = caf::atom_constant<caf::atom("heartbeat")>;
using wake_atom = caf::atom_constant<caf::atom("wake")>;

/// The latest buckets of one rule's scope id and window, read at database time `db_now`.
struct feed_batch {
  std::vector<bucket_value> buckets;  // ascending
  std::int64_t db_now = 0;
  /// Buckets ending at or before this instant are closed (db_now - grace); 0: unknown (no
  /// no_data decisions).
  std::int64_t closed_before = 0;
  /// silence_sec rules: the scope's newest reading (µs), nullopt when it never reported.
  std::optional<std::int64_t> last_seen;
};

/// A state change to persist: the new state, valid only if the stored one still has
/// `expected_seq`, plus the notifications it produced (same transaction).
struct state_change {
  std::string rule_id;
  std::int64_t expected_seq = 0;
  eval_state next;
  std::vector<notification> notes;
};

/// What became of a state_change.
struct save_outcome {
  enum kind_t : std::uint8_t {
    applied,   // stored; `current` is the new state (with its new seq)
    conflict,  // the stored seq differed; `current` is what is stored
    failed,    // not stored (database unreachable, timeout); `error` says why
  } kind = failed;
  eval_state current;
  std::string error;
};

/// One finished delivery attempt (internal to the notifier).
struct attempt_done {
  std::string alert_id;
  std::string destination;
  int http_status = 0;  // 0: no response (network error, timeout); -1: refused, never retried
  std::string error;    // failure class (webhook_response::error), stored and shown
  int attempts = 0;     // this attempt's number
  std::string detail;   // the underlying reason: server log only
  std::vector<std::string> alert_ids;  // the outbox rows the attempt delivered
};

} // namespace joule::rules

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(joule::rules::alert_rule)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(joule::rules::feed_batch)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(joule::rules::state_change)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(joule::rules::save_outcome)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(joule::rules::attempt_done)

namespace joule::rules {

/// Persists evaluator state changes (production: a db_job on the pool per save).
using alert_store_actor = caf::typed_actor<
  /// Stores the change atomically with its notifications; always answers, errors included.
  caf::replies_to<state_change>::with<save_outcome>>;

/// One rule's evaluator: state machine ok → pending → firing → resolved, with cooldown.
using alert_evaluator_actor = caf::typed_actor<
  /// The latest buckets of this rule's scope id and window (from the feed).
  caf::reacts_to<feed_batch>,
  /// A new definition of the same rule (PUT); state is kept.
  caf::reacts_to<rule_set_atom, alert_rule>,
  /// Internal: the repeat timer of the open firing (the number tells stale timers apart).
  caf::reacts_to<repeat_atom, std::uint64_t>,
  /// Rule, phase and counters as JSON.
  caf::replies_to<status_atom>::with<std::string>>;

/// Subscription of one evaluator to the feed.
struct feed_subscription {
  std::string rule_id;
  scope_kind scope = scope_kind::device;
  std::string scope_id;
  std::int64_t window_us = minute_us;
  alert_evaluator_actor evaluator;
  /// silence_sec: the feed tracks the scope's newest reading and sends it every cycle.
  bool silence = false;
  /// Sent a batch every cycle, buckets or not (no_data policies decide on absent buckets).
  bool every_cycle = false;
};

} // namespace joule::rules

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(joule::rules::feed_subscription)

namespace joule::rules {

/// Reads the latest buckets for all subscribed scope ids once per interval and hands each
/// evaluator its own.
using bucket_feed_actor = caf::typed_actor<
  /// Adds or replaces the subscription of a rule.
  caf::reacts_to<subscribe_atom, feed_subscription>,
  /// Removes the subscription of a rule (by id).
  caf::reacts_to<unsubscribe_atom, std::string>,
  /// The start-up load is subscribed: the next cycle also reads the buckets that closed in
  /// the last `µs` (alerts.catch_up), so those closed while the server was down are
  /// evaluated, in order, before live ones.
  caf::reacts_to<catch_up_atom, std::int64_t>,
  /// Internal: time for the next cycle.
  caf::reacts_to<tick_atom>,
  /// Subscriptions, cycles, last cycle duration as JSON.
  caf::replies_to<status_atom>::with<std::string>>;

/// Owns the evaluators: loads enabled rules at start, applies API changes live.
using alert_manager_actor = caf::typed_actor<
  /// A rule was created or updated (enabled or not): spawn, update or stop its evaluator.
  caf::reacts_to<rule_set_atom, alert_rule>,
  /// A rule was deleted: stop its evaluator.
  caf::reacts_to<rule_drop_atom, std::string>,
  /// A rule changed in the database (NOTIFY joule_rule_changes, any instance or plain SQL):
  /// re-read its version, apply what changed.
  caf::reacts_to<rule_check_atom, std::string>,
  /// Internal: read the versions of the rules announced since the last time.
  caf::reacts_to<rule_check_atom>,
  /// Compare every rule's version with the database (periodically, and after the listener
  /// reconnected: notifications sent meanwhile are lost).
  caf::reacts_to<reconcile_atom>,
  /// Internal: renew this instance's heartbeat, fence itself if it could not.
  caf::reacts_to<heartbeat_atom>,
  /// Internal: the lease of the heartbeat sent at this steady-clock time (ns) is about to run
  /// out: fence unless a newer heartbeat renewed it.
  caf::reacts_to<heartbeat_atom, std::int64_t>,
  /// Internal: retry the first full compare.
  caf::reacts_to<tick_atom>,
  /// Rules and evaluators as JSON.
  caf::replies_to<status_atom>::with<std::string>,
  /// This instance as JSON: id, lease_sec, owned_rules (first 1,000), owned_rule_count, peers.
  caf::replies_to<instance_atom>::with<std::string>>;

/// Publishes the manager's instance view under /admin/status "instance".
using instance_status_actor = caf::typed_actor<
  caf::replies_to<status_atom>::with<std::string>,
  caf::reacts_to<instance_atom>>;

/// Housekeeping of the alert tables: releases alerts whose silence ended (one notification
/// each), and deletes notifications past alerts.retention.
using alert_janitor_actor = caf::typed_actor<
  /// Internal: time to release silenced alerts (and, now and then, to clean up).
  caf::reacts_to<tick_atom>,
  /// A silence was deleted or a rule changed: check every silenced alert now.
  caf::reacts_to<nudge_atom>,
  /// Releases, deletions and failures as JSON.
  caf::replies_to<status_atom>::with<std::string>>;

/// Delivers notifications from the durable outbox.
using notifier_actor = caf::typed_actor<
  /// New rows may be due: claim now instead of at the next poll.
  caf::reacts_to<nudge_atom>,
  /// Internal: poll the outbox.
  caf::reacts_to<tick_atom>,
  /// Internal: the earliest pending row became due (the number tells stale timers apart).
  caf::reacts_to<wake_atom, std::uint64_t>,
  /// Internal: a delivery attempt ended.
  caf::reacts_to<attempt_done>,
  /// Internal: post the firing alerts of Alertmanager receivers again (before its
  /// resolve_timeout ends them).
  caf::reacts_to<resend_atom>,
  /// Internal: the previous page of re-post pass N has been answered: post the next one.
  caf::reacts_to<resend_atom, std::uint64_t>,
  /// In-flight deliveries per destination, outbox depth, counters as JSON.
  caf::replies_to<status_atom>::with<std::string>>;

} // namespace joule::rules
