#include "rules/alert_manager.hpp"

#include <limits>
#include <memory>

#include <caf/typed_event_based_actor.hpp>

#include "core/log.hpp"
#include "core/metrics.hpp"
#include "rules/alert_evaluator.hpp"
#include "rules/alert_metrics.hpp"
#include "rules/alert_store.hpp"
#include "rules/rule_sql.hpp"

namespace joule::rules {
namespace {

using self_ptr = alert_manager_actor::stateful_pointer<alert_manager_state>;

constexpr std::int64_t deleted_version = std::numeric_limits<std::int64_t>::max();

void update_gauge(self_ptr self) {
  metrics::global()
      .get_gauge("joule_alert_evaluators", "Running alert evaluators (enabled rules)")
      .set(static_cast<double>(self->state.running.size()));
}

void stop_evaluator(self_ptr self, const std::string& rule_id) {
  auto& st = self->state;
  auto it = st.running.find(rule_id);
  if (it == st.running.end())
    return;
  self->send(st.feed, unsubscribe_atom::value, rule_id);
  // Unlink first: an evaluator stopped on purpose must not take the manager down with it.
  self->unlink_from(it->second.evaluator);
  self->send_exit(it->second.evaluator, caf::exit_reason::user_shutdown);
  st.running.erase(it);
  update_gauge(self);
}

void subscribe(self_ptr self, const std::string& rule_id,
               const alert_manager_state::running_rule& rr) {
  const bool silence = !def_of(rr.metric).per_bucket;
  self->send(self->state.feed, subscribe_atom::value,
             feed_subscription{rule_id, rr.scope, rr.scope_id, rr.window_us, rr.evaluator,
                               silence, silence || rr.no_data != no_data_policy::keep});
}

// Applies a rule definition (with `state` as the persisted state for a new evaluator).
void apply(self_ptr self, alert_rule rule, const eval_state& state) {
  auto& st = self->state;
  auto& known = st.versions[rule.id];
  if (known >= rule.version)
    return;  // stale: a newer definition (or the deletion) was applied already
  known = rule.version;
  if (!rule.enabled) {
    stop_evaluator(self, rule.id);
    return;
  }
  auto it = st.running.find(rule.id);
  if (it != st.running.end()) {
    bool moved = !it->second.subscribed_like(rule);
    it->second.take(rule);
    self->send(it->second.evaluator, rule_set_atom::value, std::move(rule));
    if (moved)
      subscribe(self, it->first, it->second);
    return;
  }
  auto id = rule.id;
  auto& rr = st.running[id];
  rr.take(rule);
  rr.evaluator = self->spawn<caf::linked>(alert_evaluator, std::move(rule), state, st.store,
                                          st.cfg.save_timeout);
  subscribe(self, id, rr);
  update_gauge(self);
}

void load(self_ptr self) {
  auto& st = self->state;
  auto pool = st.pool();
  if (!pool) {
    self->delayed_send(self, st.cfg.load_retry, tick_atom::value);
    return;
  }
  auto out = std::make_shared<rules_loaded>();
  db_job job;
  job.label = "alerts.load_rules";
  job.timeout = std::chrono::seconds(30);
  job.run = [out](db::session& s) {
    out->rules = load_enabled_rules(s);
    return std::any{};
  };
  self->request(pool, job.timeout + std::chrono::seconds(1), std::move(job))
      .then(
          [self, out](db_done&) {
            self->send(self, std::move(*out));
          },
          [self](caf::error& err) {
            rules_loaded failed;
            failed.error = failure_of(err).message;
            self->send(self, std::move(failed));
          });
}

} // namespace

alert_manager_actor::behavior_type alert_manager(self_ptr self, alert_manager_config cfg,
                                                 std::function<db_pool_actor()> pool,
                                                 std::function<void()> nudge) {
  auto& st = self->state;
  st.cfg = cfg;
  st.pool = std::move(pool);
  st.feed = self->spawn<caf::linked>(bucket_feed, cfg.feed, st.pool);
  st.store = self->spawn<caf::linked>(alert_store, st.pool, std::move(nudge),
                                      cfg.save_timeout - std::chrono::milliseconds(500));
  load(self);
  return {
      [self](rule_set_atom, alert_rule& rule) { apply(self, std::move(rule), eval_state{}); },
      [self](rule_drop_atom, const std::string& rule_id) {
        self->state.versions[rule_id] = deleted_version;
        stop_evaluator(self, rule_id);
      },
      [self](rules_loaded& loaded) {
        auto& st = self->state;
        if (!loaded.error.empty()) {
          ++st.load_failures;
          log(log_level::warn, "alerts", "loading rules failed, retrying: " + loaded.error);
          self->delayed_send(self, st.cfg.load_retry, tick_atom::value);
          return;
        }
        st.loaded = true;
        // A rule re-enabled later starts from seq 0 and adopts the stored state on its first
        // save (a conflict); rules loaded here start from their stored state directly.
        for (auto& [rule, state] : loaded.rules)
          apply(self, std::move(rule), state);
        // Sent after every subscription, so the catch-up cycle covers all loaded rules.
        if (st.cfg.catch_up.count() > 0)
          self->send(st.feed, catch_up_atom::value,
                     static_cast<std::int64_t>(st.cfg.catch_up.count()) * 1000);
        log(log_level::info, "alerts",
            "evaluating " + std::to_string(st.running.size()) + " enabled rules");
      },
      [self](tick_atom) {
        if (!self->state.loaded)
          load(self);
      },
      [self](status_atom) -> std::string {
        auto& st = self->state;
        return "{\"loaded\":" + std::string(st.loaded ? "true" : "false") +
               ",\"evaluators\":" + std::to_string(st.running.size()) +
               ",\"load_failures\":" + std::to_string(st.load_failures) + "}";
      },
  };
}

} // namespace joule::rules
