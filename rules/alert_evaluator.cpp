#include "rules/alert_evaluator.hpp"

#include <caf/typed_event_based_actor.hpp>

#include "core/log.hpp"
#include "core/metrics.hpp"
#include "core/timefmt.hpp"
#include "rules/alert_metrics.hpp"
#include "rules/timing.hpp"

#include <algorithm>
#include <limits>

namespace joule::rules {
namespace {

using self_ptr = alert_evaluator_actor::stateful_pointer<alert_evaluator_state>;

bool same_except_last_bucket(const eval_state& a, const eval_state& b) {
  return a.current == b.current && a.breaches == b.breaches &&
         a.cooldown_until == b.cooldown_until && a.incident_id == b.incident_id &&
         a.fired_at == b.fired_at && a.last_notified_at == b.last_notified_at &&
         a.repeats == b.repeats;
}

// Labelled by scope and metric, not by rule: a series per rule grows without bound.
std::string counter_labels(const alert_rule& r) {
  return metrics::label("scope", to_string(r.scope)) + "," +
         metrics::label("metric", to_string(r.metric));
}

void count_transitions(self_ptr self, const std::vector<notification>& notes) {
  auto& st = self->state;
  for (auto& n : notes) {
    if (n.status == "firing" && n.repeat > 0) {
      ++st.repeats_sent;
      metrics::global()
          .get_counter("joule_alerts_repeated_total",
                       "Repeat notifications of still-firing alerts, by scope and metric",
                       counter_labels(st.rule))
          .inc();
    } else if (n.status == "firing") {
      ++st.fired;
      metrics::global()
          .get_counter("joule_alerts_fired_total", "Alerts fired, by scope and metric",
                       counter_labels(st.rule))
          .inc();
    } else {
      ++st.resolved;
      metrics::global()
          .get_counter("joule_alerts_resolved_total",
                       "Firing alerts resolved, by scope and metric", counter_labels(st.rule))
          .inc();
    }
    log(log_level::info, "alerts",
        "rule " + st.rule.id + " " + n.status + " (alert " + n.alert_id + ", observed " +
            std::to_string(n.observed) + ")");
  }
}

void schedule_repeat(self_ptr self) {
  auto& st = self->state;
  ++st.repeat_timer;  // whatever was scheduled before no longer applies
  auto due = repeat_due_at(st.state, st.rule.repeat_interval_sec);
  if (!due)
    return;
  auto delay = std::max<std::int64_t>(0, *due - st.now());
  self->delayed_send(self, std::chrono::microseconds(delay), repeat_atom::value,
                     st.repeat_timer);
}

void on_batch(self_ptr self, const feed_batch& batch);

// After a save: a batch that arrived meanwhile is evaluated now (the feed sends a scope's
// buckets only when they changed, so it would not come again); after a failed save the
// newest batch is evaluated again a second later (the database may be down: no hot loop).
// After a conflict the batch being saved is evaluated again from the stored state, also a
// second later: the other writer (the previous owner in a hand-over) may not have seen its
// buckets, and the feed will not send them again. Buckets the stored state already covers
// are skipped (last_bucket), so this never notifies twice.
void after_save(self_ptr self, bool failed, bool conflict = false) {
  auto& st = self->state;
  auto next = std::move(st.deferred);
  auto tried = std::move(st.in_flight);
  bool delay = failed;
  if (!next && (failed || conflict)) {
    next = std::move(tried);
    delay = true;
  }
  if (!next)
    return;
  if (delay)
    self->delayed_send(self, std::chrono::seconds(1), std::move(*next));
  else
    on_batch(self, *next);
}

void save(self_ptr self, eval_state next, std::vector<notification> notes) {
  auto& st = self->state;
  st.saving = true;
  state_change change{st.rule.id, st.state.seq, std::move(next), std::move(notes)};
  auto counted = change.notes;  // for counting once stored
  self->request(st.store, st.save_timeout, std::move(change))
      .then(
          [self, counted](save_outcome& out) {
            auto& st = self->state;
            st.saving = false;
            switch (out.kind) {
              case save_outcome::applied:
                st.state = out.current;
                count_transitions(self, counted);
                break;
              case save_outcome::conflict:
                // Another writer moved the state (or our own timed-out save committed):
                // continue from what is stored; its notifications are already in the outbox.
                ++st.conflicts;
                st.state = out.current;
                break;
              case save_outcome::failed:
                ++st.save_failures;
                break;  // keep the old state: the same buckets are evaluated again
            }
            schedule_repeat(self);
            after_save(self, out.kind == save_outcome::failed,
                       out.kind == save_outcome::conflict);
          },
          [self](caf::error& err) {
            auto& st = self->state;
            st.saving = false;
            ++st.save_failures;
            log(log_level::warn, "alerts",
                "rule " + st.rule.id + ": state save failed: " + self->system().render(err));
            schedule_repeat(self);
            after_save(self, true);
          });
}

void on_batch(self_ptr self, const feed_batch& batch) {
  auto& st = self->state;
  ++st.batches;
  if (st.saving) {
    ++st.dropped_batches;
    st.deferred = std::make_unique<feed_batch>(batch);  // the newest wins
    return;
  }
  auto r = evaluate_batch(st.rule, st.state, batch, random_uuid);
  if (r.evaluated == 0)
    return;
  st.evaluations += static_cast<std::uint64_t>(r.evaluated);
  if (r.last_observation)
    st.last_observation = r.last_observation;
  if (st.lag)
    for (auto& b : batch.buckets)
      if (b.closed && (!st.state.last_bucket || b.start > *st.state.last_bucket))
        st.lag->observe(static_cast<double>(batch.db_now - (b.start + b.width)) / 1e6);
  if (!r.must_persist) {
    st.state = r.next;
    return;
  }
  st.in_flight = std::make_unique<feed_batch>(batch);
  save(self, std::move(r.next), std::move(r.notes));
}

void on_repeat(self_ptr self, std::uint64_t timer) {
  auto& st = self->state;
  if (timer != st.repeat_timer || st.state.current != phase::firing ||
      st.rule.repeat_interval_sec <= 0)
    return;  // stale: resolved, rescheduled or switched off since
  if (st.saving) {
    // The save in flight reschedules when it ends (its outcome may resolve the alert).
    return;
  }
  auto now = st.now();
  auto next = st.state;
  next.repeats = std::min(next.repeats + 1, 1'000'000);
  next.last_notified_at = now;
  auto obs = st.last_observation.value_or(
      std::pair<std::int64_t, double>{st.state.last_bucket.value_or(st.state.fired_at),
                                      std::numeric_limits<double>::quiet_NaN()});
  // A new alert id: receivers deduplicate on it, and a repeat is news, not a retry.
  auto note = make_notification(st.rule, transition::fired, random_uuid(), st.state.incident_id,
                                obs.first, obs.second, st.state.fired_at, now, next.repeats);
  save(self, std::move(next), {std::move(note)});
}

} // namespace

batch_result evaluate_batch(const alert_rule& rule, const eval_state& state,
                            const feed_batch& batch, const std::function<std::string()>& new_id) {
  batch_result out;
  out.next = state;
  const auto p = params_of(rule);
  auto take = [&](const step_result& step, std::int64_t bucket) {
    const auto before = out.next;
    ++out.evaluated;
    out.next = step.next;
    out.last_observation = std::pair<std::int64_t, double>{bucket, step.observed};
    if (step.event == transition::fired) {
      auto id = new_id();
      out.next.incident_id = id;
      out.notes.push_back(make_notification(rule, transition::fired, id, id, bucket,
                                            step.observed, out.next.fired_at, batch.db_now));
    } else if (step.event == transition::resolved) {
      out.notes.push_back(make_notification(rule, transition::resolved, new_id(),
                                            before.incident_id, bucket, step.observed,
                                            before.fired_at, batch.db_now));
      out.next.incident_id.clear();
      out.next.fired_at = 0;
      out.next.last_notified_at = 0;
      out.next.repeats = 0;
    }
  };
  if (!def_of(rule.metric).per_bucket) {
    // silence_sec: one observation per cycle, from the scope's newest reading. A scope that
    // never reported is silent since the rule exists.
    if (batch.db_now > 0) {
      auto since = batch.last_seen.value_or(rule.created_at);
      auto silent_us = std::max<std::int64_t>(0, batch.db_now - since);
      take(evaluate_silence(p, out.next, static_cast<double>(silent_us) / 1e6, batch.db_now),
           since);
    }
  } else {
    for (auto& b : batch.buckets) {
      auto step = evaluate_bucket(p, out.next, b, batch.db_now);
      if (step.evaluated)
        take(step, b.start);
    }
    // The newest closed bucket had no reading of the metric: the rule's no_data policy.
    if (p.no_data != no_data_policy::keep && batch.closed_before > 0) {
      auto start = newest_closed_bucket(batch.closed_before, rule.window_us);
      auto step = evaluate_no_data(p, out.next, start, batch.db_now);
      if (step.evaluated) {
        step.observed = std::numeric_limits<double>::quiet_NaN();
        take(step, start);
      }
    }
  }
  out.must_persist = !out.notes.empty() || !same_except_last_bucket(out.next, state);
  return out;
}

alert_evaluator_actor::behavior_type
alert_evaluator(self_ptr self, alert_rule rule, eval_state initial, alert_store_actor store,
                std::chrono::milliseconds save_timeout) {
  return alert_evaluator_clocked(self, std::move(rule), initial, std::move(store), save_timeout,
                                 &now_micros);
}

alert_evaluator_actor::behavior_type
alert_evaluator_clocked(self_ptr self, alert_rule rule, eval_state initial,
                        alert_store_actor store, std::chrono::milliseconds save_timeout,
                        std::int64_t (*now)()) {
  auto& st = self->state;
  st.now = now;
  st.rule = std::move(rule);
  st.state = initial;
  st.store = std::move(store);
  st.save_timeout = save_timeout;
  st.lag = &metrics::global().get_histogram(
      "joule_alert_evaluation_lag_seconds",
      "From a bucket's end to its evaluation (grace period and feed interval included)");
  schedule_repeat(self);
  return {
      [self](feed_batch& batch) { on_batch(self, batch); },
      [self](rule_set_atom, alert_rule& r) {
        // Same rule, new definition: thresholds apply from the next bucket; the state (a
        // firing alert, the cooldown) carries over.
        self->state.rule = std::move(r);
        schedule_repeat(self);
      },
      [self](repeat_atom, std::uint64_t timer) { on_repeat(self, timer); },
      [self](status_atom) -> std::string {
        auto& st = self->state;
        return "{\"rule_id\":\"" + st.rule.id + "\",\"phase\":\"" + to_string(st.state.current) +
               "\",\"breaches\":" + std::to_string(st.state.breaches) +
               ",\"last_bucket\":" +
               (st.state.last_bucket ? "\"" + format_rfc3339(*st.state.last_bucket) + "\""
                                     : std::string("null")) +
               ",\"batches\":" + std::to_string(st.batches) +
               ",\"evaluations\":" + std::to_string(st.evaluations) +
               ",\"fired\":" + std::to_string(st.fired) +
               ",\"resolved\":" + std::to_string(st.resolved) +
               ",\"repeats\":" + std::to_string(st.repeats_sent) +
               ",\"conflicts\":" + std::to_string(st.conflicts) +
               ",\"save_failures\":" + std::to_string(st.save_failures) + "}";
      },
  };
}

} // namespace joule::rules
