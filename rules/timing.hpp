#pragma once
// When things are due, as pure functions of durable state and the time: when a still-firing
// alert repeats, and when a receiver's group flushes (group_wait, group_interval). The state
// lives in PostgreSQL (alert_rule_state.last_notified_at, alert_groups); the actors only turn
// these answers into timers (the evaluator's repeat timer, the notifier's flush timer), and
// the deterministic tests drive those timers with CAF's test coordinator.

#include <cstdint>
#include <optional>

#include "rules/evaluation.hpp"

namespace joule::rules {

/// When the open firing of `s` is to be notified again under `repeat_interval_sec` (0: never),
/// or nothing (not firing, repeats off).
std::optional<std::int64_t> repeat_due_at(const eval_state& s, std::int64_t repeat_interval_sec);

/// A group's durable timing (alert_groups): the scheduled flush (none: nothing waiting) and
/// when it last flushed (none: never).
struct group_times {
  std::optional<std::int64_t> flush_at;
  std::optional<std::int64_t> last_flush_at;
};

/// When a notification that joins the group at `now` is sent: with the flush already
/// scheduled; else group_interval after the group's last flush, if that is still ahead; else
/// group_wait from now (a new group, or one quiet for longer than its interval).
std::int64_t group_flush_at(const group_times& g, std::int64_t now, std::int64_t wait_us,
                            std::int64_t interval_us);

} // namespace joule::rules
