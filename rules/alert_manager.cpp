#include "rules/alert_manager.hpp"

#include <algorithm>
#include <cstdio>
#include <limits>
#include <memory>

#include <caf/typed_event_based_actor.hpp>

#include "core/log.hpp"
#include "core/metrics.hpp"
#include "http/router.hpp"
#include "rules/alert_evaluator.hpp"
#include "rules/alert_metrics.hpp"
#include "rules/alert_store.hpp"
#include "rules/lease_sql.hpp"
#include "rules/ownership.hpp"
#include "rules/rule_sql.hpp"

namespace joule::rules {
namespace {

using self_ptr = alert_manager_actor::stateful_pointer<alert_manager_state>;
using clock = std::chrono::steady_clock;

constexpr std::int64_t deleted_version = std::numeric_limits<std::int64_t>::max();
/// At most this many rule ids in /admin/status "instance" (the count is exact).
constexpr std::size_t owned_list_max = 1000;

// Fencing margin: evaluators stop this long before the lease could run out.
std::chrono::milliseconds fence_margin(std::chrono::milliseconds lease) { return lease / 5; }

void update_gauge(self_ptr self) {
  auto n = static_cast<double>(self->state.running.size());
  metrics::global()
      .get_gauge("joule_alert_evaluators", "Running alert evaluators (enabled rules)")
      .set(n);
  metrics::global()
      .get_gauge("joule_alert_rules_owned",
                 "Alert rules this instance owns (holds the lease of and evaluates)")
      .set(n);
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

void spawn_evaluator(self_ptr self, alert_rule rule, const eval_state& state) {
  auto& st = self->state;
  auto id = rule.id;
  auto& rr = st.running[id];
  rr.take(rule);
  rr.evaluator = self->spawn<caf::linked>(alert_evaluator, std::move(rule), state, st.store,
                                          st.cfg.save_timeout);
  subscribe(self, id, rr);
  update_gauge(self);
}

// A newer definition for a running evaluator (state is kept).
void update_evaluator(self_ptr self, alert_manager_state::running_rule& rr, alert_rule rule) {
  bool moved = !rr.subscribed_like(rule);
  rr.take(rule);
  auto id = rule.id;
  self->send(rr.evaluator, rule_set_atom::value, std::move(rule));
  if (moved)
    subscribe(self, id, rr);
}

/// Learns (version, enabled) of a rule; true when it was newer than what was known.
bool learn(self_ptr self, const std::string& id, std::int64_t version, bool enabled) {
  auto& k = self->state.known[id];
  if (k.version == deleted_version || version <= k.version)
    return false;
  k.version = version;
  k.enabled = enabled;
  k.seen = clock::now();
  return true;
}

void forget(self_ptr self, const std::string& id) {
  auto& st = self->state;
  auto& k = st.known[id];
  k.version = deleted_version;
  k.enabled = false;
  k.seen = clock::now();
  stop_evaluator(self, id);
  st.held.erase(id);  // the lease row went with the rule (ON DELETE CASCADE)
}

bool fenced_now(self_ptr self) {
  auto& st = self->state;
  return !st.have_live ||
         !lease_valid(st.last_ok, clock::now(), st.cfg.lease, fence_margin(st.cfg.lease));
}

void plan(self_ptr self);

// The lease could not be renewed in time: another instance may take our rules from the
// moment it runs out, so stop evaluating before that and hold nothing.
void fence(self_ptr self) {
  auto& st = self->state;
  if (!st.running.empty() || !st.held.empty())
    log(log_level::warn, "alerts",
        "instance lease not renewed in time: stopping " + std::to_string(st.running.size()) +
            " evaluators until the database answers again");
  std::vector<std::string> ids;
  for (auto& [id, rr] : st.running)
    ids.push_back(id);
  for (auto& id : ids)
    stop_evaluator(self, id);
  st.held.clear();
  st.have_live = false;
  st.reset_leases = true;
  st.plan_dirty = true;
  ++st.fenced;
}

template <class Result, class Run, class Done>
void run_job(self_ptr self, const char* label, std::chrono::milliseconds timeout, Run run,
             Done done) {
  auto pool = self->state.pool();
  auto out = std::make_shared<Result>();
  if (!pool) {
    done(out, std::string("database pool not running"));
    return;
  }
  db_job job;
  job.label = label;
  job.timeout = timeout;
  job.run = [out, run](db::session& s) {
    run(s, *out);
    return std::any{};
  };
  self->request(pool, job.timeout + std::chrono::seconds(1), std::move(job))
      .then([out, done](db_done&) { done(out, std::string{}); },
            [out, done](caf::error& err) {
              auto msg = failure_of(err).message;
              done(out, msg.empty() ? std::string("failed") : msg);
            });
}

// Releases what this instance should no longer evaluate and claims what it should (plus the
// definitions of held rules that changed), one lease job at a time.
void plan(self_ptr self) {
  auto& st = self->state;
  if (!st.loaded || !st.have_live || st.reset_leases || st.leases_busy || fenced_now(self))
    return;
  if (!st.plan_dirty && st.plan_ids.empty() && st.refresh.empty())
    return;
  std::vector<std::string> enabled;
  lease_plan p;
  if (st.plan_dirty) {
    enabled.reserve(st.known.size());
    for (auto& [id, k] : st.known)
      if (k.enabled && k.version != deleted_version)
        enabled.push_back(id);
    p = plan_leases(st.cfg.instance_id, st.live, enabled, st.held);
  } else {
    // Only the rules that changed: one API call must not hash 100,000 rules.
    std::unordered_set<std::string> held;
    for (auto& id : st.plan_ids) {
      auto k = st.known.find(id);
      if (k != st.known.end() && k->second.enabled && k->second.version != deleted_version)
        enabled.push_back(id);
      if (st.held.count(id))
        held.insert(id);
    }
    p = plan_leases(st.cfg.instance_id, st.live, enabled, held);
  }
  st.plan_dirty = false;
  st.plan_ids.clear();
  // Stop first, release after: never two evaluators of one rule on two instances.
  for (auto& id : p.release)
    stop_evaluator(self, id);
  // A changed rule that is released now is not claimed back by the same job.
  auto acquire = lease_claims(p, st.refresh, st.held);
  st.refresh.clear();
  if (acquire.empty() && p.release.empty())
    return;
  st.leases_busy = true;
  struct result {
    std::vector<std::pair<alert_rule, eval_state>> acquired;
  };
  auto me = st.cfg.instance_id;
  auto release = std::move(p.release);
  run_job<result>(
      self, "alerts.leases", std::chrono::seconds(30),
      [me, release, acquire](db::session& s, result& out) {
        out.acquired = change_leases(s, me, release, acquire);
      },
      [self, release, acquire](std::shared_ptr<result> out, const std::string& error) {
        auto& st = self->state;
        st.leases_busy = false;
        if (!error.empty()) {
          ++st.lease_failures;
          log(log_level::warn, "alerts", "changing rule leases failed, retrying: " + error);
          if (st.reset_leases)
            return;  // fenced meanwhile: the reset heartbeat drops whatever we held
          // Released rows are stopped already: retry the release with the next plan.
          for (auto& id : release) {
            st.held.insert(id);
            st.plan_ids.insert(id);
          }
          // The claims may have committed before the error (a lost connection after the
          // commit, a deadline): count them as held, so that a plan that no longer wants
          // one releases it (else its row would stay ours and no peer could ever take it),
          // and claim them again otherwise (a held rule in `refresh` is claimed again).
          for (auto& id : acquire) {
            st.held.insert(id);
            st.refresh.push_back(id);
            st.plan_ids.insert(id);
          }
          return;
        }
        for (auto& id : release)
          st.held.erase(id);
        if (st.reset_leases || fenced_now(self))
          return;  // fenced meanwhile: the reset heartbeat drops whatever this claimed
        std::unordered_set<std::string> got;
        bool takeover = false;
        const auto now_us = std::chrono::duration_cast<std::chrono::microseconds>(
                                std::chrono::system_clock::now().time_since_epoch())
                                .count();
        const auto recent_us =
            std::chrono::duration_cast<std::chrono::microseconds>(2 * st.cfg.lease).count();
        for (auto& [rule, state] : out->acquired) {
          got.insert(rule.id);
          st.held.insert(rule.id);
          learn(self, rule.id, rule.version, rule.enabled);
          auto& k = st.known[rule.id];
          if (k.version == deleted_version || !k.enabled) {
            st.plan_ids.insert(rule.id);  // deleted or disabled since: released by the next plan
            continue;
          }
          if (rule.version < k.version)
            st.refresh.push_back(rule.id);  // a newer definition exists: read it again
          auto it = st.running.find(rule.id);
          if (it != st.running.end()) {
            if (rule.version > it->second.version)
              update_evaluator(self, it->second, std::move(rule));
            continue;
          }
          // A rule older than a hand-over may have buckets that closed while nobody
          // evaluated it; a brand-new rule has nothing to catch up.
          if (now_us - rule.created_at > recent_us)
            takeover = true;
          ++st.handovers;
          spawn_evaluator(self, std::move(rule), state);
        }
        for (auto& id : acquire) {
          if (got.count(id))
            continue;
          auto k = st.known.find(id);
          if (k != st.known.end() && k->second.enabled && k->second.version != deleted_version) {
            // Held by another live instance (it has not seen the change yet): retry with
            // the next heartbeat. A rule we ran lost its lease: stop it.
            stop_evaluator(self, id);
            st.held.erase(id);
            st.plan_ids.insert(id);
          }
        }
        if (!st.caught_up) {
          st.caught_up = true;  // the first acquisition is the start-up: catch up as before
          takeover = true;
          log(log_level::info, "alerts",
              "instance " + st.cfg.instance_id + " evaluating " +
                  std::to_string(st.running.size()) + " of " + std::to_string(st.known.size()) +
                  " rules (" + std::to_string(st.live.size()) + " live instances)");
        }
        // Sent after the subscriptions: the catch-up cycle covers the rules just taken.
        if (takeover && st.cfg.catch_up.count() > 0)
          self->send(st.feed, catch_up_atom::value,
                     static_cast<std::int64_t>(st.cfg.catch_up.count()) * 1000);
        if (!st.refresh.empty())
          plan(self);
      });
}

void send_heartbeat(self_ptr self) {
  auto& st = self->state;
  if (st.heartbeat_busy)
    return;
  // A reset must not cross a lease job in flight (its claims could land after the reset).
  const bool reset = st.reset_leases;
  if (reset && st.leases_busy)
    return;
  st.heartbeat_busy = true;
  auto started = clock::now();
  struct result {
    std::optional<std::vector<std::string>> live;
  };
  auto me = st.cfg.instance_id;
  auto lease_ms = static_cast<std::int64_t>(st.cfg.lease.count());
  run_job<result>(
      self, "alerts.heartbeat", std::max(std::chrono::milliseconds(100), st.cfg.lease / 2),
      [me, lease_ms, reset](db::session& s, result& out) {
        out.live = heartbeat(s, me, lease_ms, reset);
      },
      [self, started, reset](std::shared_ptr<result> out, const std::string& error) {
        auto& st = self->state;
        st.heartbeat_busy = false;
        if (!error.empty()) {
          if (st.heartbeat_failures++ == 0 || st.have_live)
            log(log_level::warn, "alerts", "instance heartbeat failed: " + error);
          return;
        }
        if (!out->live) {
          // Our row expired or was deleted: whatever we held may be someone else's now.
          log(log_level::warn, "alerts", "instance " + st.cfg.instance_id + " expired: rejoining");
          fence(self);
          return;
        }
        if (reset) {
          st.reset_leases = false;
          st.held.clear();  // the reset deleted every row of ours (no lease job was in flight)
        }
        st.heartbeat_failures = 0;
        st.last_ok = started;
        st.have_live = true;
        // The fence must not wait for the next tick: schedule it for this lease's end.
        auto until = started + st.cfg.lease - fence_margin(st.cfg.lease);
        self->delayed_send(self,
                           std::max(std::chrono::milliseconds(0),
                                    std::chrono::duration_cast<std::chrono::milliseconds>(
                                        until - clock::now()) +
                                        std::chrono::milliseconds(1)),
                           heartbeat_atom::value,
                           static_cast<std::int64_t>(started.time_since_epoch().count()));
        if (*out->live != st.live) {
          if (!st.live.empty() || out->live->size() > 1)
            log(log_level::info, "alerts",
                "live instances: " + std::to_string(out->live->size()) + " (was " +
                    std::to_string(st.live.size()) + ")");
          st.live = std::move(*out->live);
          st.plan_dirty = true;
        }
        plan(self);
      });
}

// Applies versions read from the database: `all` (every rule; absent ones were deleted) or
// the ids announced by NOTIFY.
void apply_versions(self_ptr self, const std::vector<rule_version>& rows,
                    const std::vector<std::string>& asked, bool all, clock::time_point started) {
  auto& st = self->state;
  std::unordered_set<std::string> present;
  present.reserve(rows.size());
  for (auto& r : rows) {
    present.insert(r.id);
    if (learn(self, r.id, r.version, r.enabled))
      st.plan_ids.insert(r.id);
    auto it = st.running.find(r.id);
    if (it == st.running.end() || r.version <= it->second.version)
      continue;
    if (!r.enabled)
      stop_evaluator(self, r.id);  // the next plan releases the lease
    else
      st.refresh.push_back(r.id);  // read the new definition with the next lease job
  }
  std::vector<std::string> gone;
  if (all) {
    for (auto& [id, k] : st.known) {
      if (present.count(id) || k.seen >= started)
        continue;  // still there, or learned after the read began (it may be newer)
      if (k.version != deleted_version)
        gone.push_back(id);
    }
    // Deletion markers only guard against late definitions: drop the old ones.
    for (auto it = st.known.begin(); it != st.known.end();) {
      if (it->second.version == deleted_version && it->second.seen + std::chrono::minutes(1) < started)
        it = st.known.erase(it);
      else
        ++it;
    }
  } else {
    for (auto& id : asked) {
      auto k = st.known.find(id);
      if (!present.count(id) && (k == st.known.end() || k->second.seen < started))
        gone.push_back(id);
    }
  }
  for (auto& id : gone)
    forget(self, id);
  plan(self);
}

void read_versions(self_ptr self, std::vector<std::string> ids, bool all) {
  auto& st = self->state;
  auto started = clock::now();
  struct result {
    std::vector<rule_version> rows;
  };
  if (all)
    st.full_busy = true;
  else
    st.check_busy = true;
  run_job<result>(
      self, all ? "alerts.reconcile" : "alerts.rule_check", std::chrono::seconds(30),
      [ids, all](db::session& s, result& out) { out.rows = rule_versions(s, ids, all); },
      [self, ids, all, started](std::shared_ptr<result> out, const std::string& error) {
        auto& st = self->state;
        (all ? st.full_busy : st.check_busy) = false;
        if (!error.empty()) {
          log(log_level::warn, "alerts",
              std::string(all ? "reading rules" : "reading changed rules") +
                  " failed, retrying: " + error);
          if (all) {
            ++st.load_failures;
            self->delayed_send(self, st.cfg.load_retry, tick_atom::value);
          } else {
            st.checks.insert(st.checks.end(), ids.begin(), ids.end());
            st.check_scheduled = true;
            self->delayed_send(self, st.cfg.load_retry, rule_check_atom::value);
          }
          return;
        }
        if (all && !st.loaded) {
          st.loaded = true;
          st.plan_dirty = true;
        }
        apply_versions(self, out->rows, ids, all, started);
        if (all && st.reconcile_again) {
          st.reconcile_again = false;
          read_versions(self, {}, true);
        }
      });
}

std::string render_lease(std::chrono::milliseconds lease) {
  if (lease.count() % 1000 == 0)
    return std::to_string(lease.count() / 1000);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", static_cast<double>(lease.count()) / 1000.0);
  return buf;
}

} // namespace

alert_manager_actor::behavior_type alert_manager(self_ptr self, alert_manager_config cfg,
                                                 std::function<db_pool_actor()> pool,
                                                 std::function<void()> nudge) {
  auto& st = self->state;
  if (cfg.instance_id.empty())
    cfg.instance_id = generate_instance_id();
  st.cfg = cfg;
  st.pool = std::move(pool);
  st.feed = self->spawn<caf::linked>(bucket_feed, cfg.feed, st.pool);
  st.store = self->spawn<caf::linked>(alert_store, st.pool, std::move(nudge),
                                      cfg.save_timeout - std::chrono::milliseconds(500));
  update_gauge(self);
  read_versions(self, {}, true);
  self->send(self, heartbeat_atom::value);
  self->delayed_send(self, cfg.reconcile, reconcile_atom::value);
  return {
      [self](rule_set_atom, alert_rule& rule) {
        auto& st = self->state;
        if (learn(self, rule.id, rule.version, rule.enabled))
          st.plan_ids.insert(rule.id);
        auto it = st.running.find(rule.id);
        if (it != st.running.end() && rule.version > it->second.version) {
          if (!rule.enabled) {
            stop_evaluator(self, rule.id);
            st.plan_ids.insert(rule.id);  // releases the lease
          } else {
            update_evaluator(self, it->second, std::move(rule));
          }
        }
        plan(self);
      },
      [self](rule_drop_atom, const std::string& rule_id) { forget(self, rule_id); },
      [self](rule_check_atom, const std::string& rule_id) {
        auto& st = self->state;
        auto id = http::normalize_uuid(rule_id);
        if (!id)
          return;  // someone NOTIFYed by hand: nothing to read
        st.checks.push_back(*id);
        if (!st.check_scheduled) {
          st.check_scheduled = true;
          self->delayed_send(self, st.cfg.check_delay, rule_check_atom::value);
        }
      },
      [self](rule_check_atom) {
        auto& st = self->state;
        if (st.check_busy) {
          self->delayed_send(self, st.cfg.check_delay, rule_check_atom::value);
          return;
        }
        st.check_scheduled = false;
        auto ids = std::move(st.checks);
        st.checks.clear();
        std::sort(ids.begin(), ids.end());
        ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
        if (!ids.empty())
          read_versions(self, std::move(ids), false);
      },
      [self](reconcile_atom) {
        auto& st = self->state;
        if (st.full_busy) {
          st.reconcile_again = true;
          return;
        }
        read_versions(self, {}, true);
      },
      [self](tick_atom) {
        // Retry of a failed full read (the first one loads the rules).
        if (!self->state.full_busy)
          read_versions(self, {}, true);
      },
      [self](heartbeat_atom) {
        auto& st = self->state;
        self->delayed_send(self, heartbeat_interval(st.cfg.lease), heartbeat_atom::value);
        if (st.have_live && fenced_now(self))
          fence(self);
        send_heartbeat(self);
        // Claims that another instance still held are retried here.
        plan(self);
      },
      [self](heartbeat_atom, std::int64_t sent) {
        auto& st = self->state;
        if (st.have_live && st.last_ok.time_since_epoch().count() == sent && fenced_now(self))
          fence(self);
      },
      [self](status_atom) -> std::string {
        auto& st = self->state;
        return "{\"loaded\":" + std::string(st.loaded ? "true" : "false") +
               ",\"evaluators\":" + std::to_string(st.running.size()) +
               ",\"leases\":" + std::to_string(st.held.size()) +
               ",\"load_failures\":" + std::to_string(st.load_failures) +
               ",\"lease_failures\":" + std::to_string(st.lease_failures) +
               ",\"fenced\":" + std::to_string(st.fenced) +
               ",\"taken_over\":" + std::to_string(st.handovers) + "}";
      },
      [self](instance_atom) -> std::string {
        auto& st = self->state;
        std::vector<std::string> ids;
        ids.reserve(std::min(st.running.size(), owned_list_max));
        for (auto& [id, rr] : st.running) {
          if (ids.size() >= owned_list_max)
            break;
          ids.push_back(id);
        }
        std::sort(ids.begin(), ids.end());
        std::string list;
        for (auto& id : ids)
          list += (list.empty() ? "\"" : ",\"") + id + "\"";
        const auto& me = st.cfg.instance_id;
        std::size_t peers = 0;
        for (auto& i : st.live)
          if (i != me)
            ++peers;
        return "{\"id\":" + json_quote(me) + ",\"lease_sec\":" + render_lease(st.cfg.lease) +
               ",\"owned_rules\":[" + list + "],\"owned_rule_count\":" +
               std::to_string(st.running.size()) + ",\"peers\":" + std::to_string(peers) + "}";
      },
  };
}

} // namespace joule::rules
