#include "rules/alerts_module.hpp"

#include <caf/actor_system.hpp>
#include <caf/send.hpp>

#include <algorithm>

#include "db/change_listener.hpp"
#include "rules/alert_janitor.hpp"
#include "rules/alert_manager.hpp"
#include "rules/lease_sql.hpp"
#include "rules/notifier.hpp"
#include "rules/ownership.hpp"

namespace joule::rules {
namespace {

// /admin/status "instance": the manager's view of this instance (id, owned rules, peers).
instance_status_actor::behavior_type
instance_status(instance_status_actor::pointer self, std::shared_ptr<service_registry> registry) {
  return {
      [self, registry](status_atom) -> caf::result<std::string> {
        auto m = registry->get<alert_manager_actor>();
        if (!m)
          return std::string("null");
        auto rp = self->make_response_promise<std::string>();
        self->request(m, std::chrono::seconds(2), instance_atom::value)
            .then([rp](std::string& s) mutable { rp.deliver(std::move(s)); },
                  [rp](caf::error&) mutable { rp.deliver(std::string("null")); });
        return rp;
      },
      [](instance_atom) {},
  };
}

} // namespace

std::vector<child_spec> alert_children(const config::settings& s,
                                       std::shared_ptr<service_registry> registry,
                                       std::shared_ptr<db::live_tail_holder> live) {
  auto pool = [registry] { return registry->get<db_pool_actor>(); };
  std::vector<child_spec> out;
  // The notifier first: the supervisor stops children in reverse order, so evaluators stop
  // producing before the notifier stops delivering (what is left stays in the outbox).
  notifier_config nc;
  nc.workers = s.alerts_delivery_workers;
  // Half the workers at most per receiver: one slow receiver can never take them all.
  nc.per_destination = std::max(1, s.alerts_delivery_workers / 2);
  nc.webhook_timeout = s.alerts_webhook_timeout;
  nc.max_attempts = s.alerts_retry_max_attempts;
  nc.retry_initial = s.alerts_retry_initial;
  nc.retry_max = s.alerts_retry_max;
  nc.allowed_hosts = s.alerts_allowed_hosts;
  nc.allow_private_targets = s.alerts_allow_private_targets;
  nc.job_timeout = s.db_request_deadline;
  nc.alertmanager_resend = s.alerts_alertmanager_resend;
  // Long enough for a full attempt plus the local queue ahead of it; short enough that a
  // crashed instance's deliveries resume quickly.
  nc.lease = 2 * s.alerts_webhook_timeout + std::chrono::seconds(5);
  nc.poll_interval = std::min(std::chrono::milliseconds(500), s.alerts_feed_interval);
  out.push_back(supervise<notifier_actor>("alerts.notifier", [nc, pool](caf::actor_system& sys) {
    return sys.spawn(notifier, nc, pool, webhook_sender{});
  }));
  alert_manager_config mc;
  mc.feed.interval = s.alerts_feed_interval;
  mc.feed.live = std::move(live);
  mc.feed.job_timeout = std::max(s.db_request_deadline, s.alerts_feed_interval * 5);
  mc.save_timeout = s.db_request_deadline + std::chrono::seconds(1);
  mc.catch_up = s.alerts_catch_up;
  auto nudge = [registry] {
    if (auto n = registry->get<notifier_actor>())
      caf::anon_send(n, nudge_atom::value);
  };
  alert_janitor_config jc;
  jc.retention = s.alerts_retention;
  jc.job_timeout = std::max(s.db_request_deadline, std::chrono::milliseconds(30000));
  out.push_back(supervise<alert_janitor_actor>(
      "alerts.janitor", [jc, pool, nudge](caf::actor_system& sys) {
        return sys.spawn(alert_janitor, jc, pool, nudge);
      }));
  mc.lease = s.alerts_lease;
  // One id per process, kept across restarts of the manager: its leases stay its own.
  mc.instance_id = s.cluster_instance_id.empty() ? generate_instance_id() : s.cluster_instance_id;
  out.push_back(supervise<alert_manager_actor>(
      "alerts.manager",
      [mc, pool, nudge](caf::actor_system& sys) { return sys.spawn(alert_manager, mc, pool, nudge); }));
  // Rule changes made anywhere (another instance, plain SQL) reach this manager at once; what
  // was announced while the connection was down is found by a full compare after reconnect.
  db::change_listener_config lc;
  lc.url = s.db_url;
  lc.backoff_max = s.db_reconnect_backoff_max;
  lc.channel = "joule_rule_changes";
  lc.on_payload = [registry](const std::string& rule_id) {
    if (auto m = registry->get<alert_manager_actor>())
      caf::anon_send(m, rule_check_atom::value, rule_id);
  };
  lc.on_reset = [registry] {
    if (auto m = registry->get<alert_manager_actor>())
      caf::anon_send(m, reconcile_atom::value);
  };
  // A clean stop hands this instance's rules over at once (a crash: after the lease).
  lc.on_stop = [me = mc.instance_id](pqxx::connection_base& c) { leave(c, me); };
  out.push_back(supervise<db::change_listener_actor>(
      "alerts.rule_listener",
      [lc](caf::actor_system& sys) { return db::spawn_change_listener(sys, lc); }));
  out.push_back(supervise<instance_status_actor>(
      "instance", [registry](caf::actor_system& sys) {
        return sys.spawn(instance_status, registry);
      }));
  return out;
}

} // namespace joule::rules
