#include "rules/alert_evaluator.hpp"

#include <caf/typed_event_based_actor.hpp>

#include "core/log.hpp"
#include "core/metrics.hpp"
#include "core/timefmt.hpp"

namespace joule::rules {
namespace {

using self_ptr = alert_evaluator_actor::stateful_pointer<alert_evaluator_state>;

bool same_except_last_bucket(const eval_state& a, const eval_state& b) {
  return a.current == b.current && a.breaches == b.breaches &&
         a.cooldown_until == b.cooldown_until && a.incident_id == b.incident_id &&
         a.fired_at == b.fired_at;
}

void count_transitions(self_ptr self, const std::vector<notification>& notes) {
  auto& st = self->state;
  for (auto& n : notes) {
    if (n.status == "firing") {
      ++st.fired;
      metrics::global()
          .get_counter("joule_alerts_fired_total", "Alerts fired, by the rule's metric",
                       // Not per rule: 10,000 rules would be 10,000 series (the rule id is in
                       // the log line below and in /alerts/events).
                       metrics::label("metric", to_string(st.rule.metric)))
          .inc();
    } else {
      ++st.resolved;
      metrics::global()
          .get_counter("joule_alerts_resolved_total",
                       "Firing alerts resolved, by the rule's metric",
                       metrics::label("metric", to_string(st.rule.metric)))
          .inc();
    }
    log(log_level::info, "alerts",
        "rule " + st.rule.id + " " + n.status + " (alert " + n.alert_id + ", observed " +
            std::to_string(n.observed) + ")");
  }
}

void on_batch(self_ptr self, const feed_batch& batch) {
  auto& st = self->state;
  ++st.batches;
  if (st.saving) {
    ++st.dropped_batches;
    return;
  }
  auto r = evaluate_batch(st.rule, st.state, batch, random_uuid);
  if (r.evaluated == 0)
    return;
  st.evaluations += static_cast<std::uint64_t>(r.evaluated);
  if (st.lag)
    for (auto& b : batch.buckets)
      if (b.closed && (!st.state.last_bucket || b.start > *st.state.last_bucket))
        st.lag->observe(static_cast<double>(batch.db_now - (b.start + b.width)) / 1e6);
  if (!r.must_persist) {
    st.state = r.next;
    return;
  }
  st.saving = true;
  state_change change{st.rule.id, st.state.seq, r.next, std::move(r.notes)};
  auto notes = change.notes;  // for counting once stored
  self->request(st.store, st.save_timeout, std::move(change))
      .then(
          [self, notes](save_outcome& out) {
            auto& st = self->state;
            st.saving = false;
            switch (out.kind) {
              case save_outcome::applied:
                st.state = out.current;
                count_transitions(self, notes);
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
          },
          [self](caf::error& err) {
            auto& st = self->state;
            st.saving = false;
            ++st.save_failures;
            log(log_level::warn, "alerts",
                "rule " + st.rule.id + ": state save failed: " + self->system().render(err));
          });
}

} // namespace

batch_result evaluate_batch(const alert_rule& rule, const eval_state& state,
                            const feed_batch& batch, const std::function<std::string()>& new_id) {
  batch_result out;
  out.next = state;
  const auto p = params_of(rule);
  for (auto& b : batch.buckets) {
    const auto before = out.next;
    auto step = evaluate_bucket(p, before, b, batch.db_now);
    if (!step.evaluated)
      continue;
    ++out.evaluated;
    out.next = step.next;
    if (step.event == transition::fired) {
      auto id = new_id();
      out.next.incident_id = id;
      out.notes.push_back(make_notification(rule, transition::fired, id, id, b.start,
                                             step.observed, out.next.fired_at, batch.db_now));
    } else if (step.event == transition::resolved) {
      out.notes.push_back(make_notification(rule, transition::resolved, new_id(),
                                            before.incident_id, b.start, step.observed,
                                            before.fired_at, batch.db_now));
      out.next.incident_id.clear();
      out.next.fired_at = 0;
    }
  }
  out.must_persist = !out.notes.empty() || !same_except_last_bucket(out.next, state);
  return out;
}

alert_evaluator_actor::behavior_type
alert_evaluator(self_ptr self, alert_rule rule, eval_state initial, alert_store_actor store,
                std::chrono::milliseconds save_timeout) {
  auto& st = self->state;
  st.rule = std::move(rule);
  st.state = initial;
  st.store = std::move(store);
  st.save_timeout = save_timeout;
  st.lag = &metrics::global().get_histogram(
      "joule_alert_evaluation_lag_seconds",
      "From a bucket's end to its evaluation (grace period and feed interval included)");
  return {
      [self](feed_batch& batch) { on_batch(self, batch); },
      [self](rule_set_atom, alert_rule& r) {
        // Same rule, new definition: thresholds apply from the next bucket; the state (a
        // firing alert, the cooldown) carries over.
        self->state.rule = std::move(r);
      },
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
               ",\"conflicts\":" + std::to_string(st.conflicts) +
               ",\"save_failures\":" + std::to_string(st.save_failures) + "}";
      },
  };
}

} // namespace joule::rules
