#include "rules/alerts_module.hpp"

#include <caf/actor_system.hpp>
#include <caf/send.hpp>

#include <algorithm>

#include "rules/alert_janitor.hpp"
#include "rules/alert_manager.hpp"
#include "rules/notifier.hpp"

namespace joule::rules {

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
  out.push_back(supervise<alert_manager_actor>(
      "alerts.manager",
      [mc, pool, nudge](caf::actor_system& sys) { return sys.spawn(alert_manager, mc, pool, nudge); }));
  return out;
}

} // namespace joule::rules
