#include "rules/notifier.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <map>
#include <memory>
#include <random>

#include <caf/send.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "core/log.hpp"
#include "core/metrics.hpp"
#include "core/timefmt.hpp"
#include "rules/payload.hpp"

namespace joule::rules {
namespace {

using self_ptr = notifier_actor::stateful_pointer<notifier_state>;

metrics::counter& deliveries(const char* result) {
  return metrics::global().get_counter("joule_alert_deliveries_total",
                                       "Webhook delivery attempts by result",
                                       metrics::label("result", result));
}

double jitter() {
  thread_local std::mt19937_64 gen{std::random_device{}()};
  return std::uniform_real_distribution<double>(0.0, 1.0)(gen);
}

void claim(self_ptr self);

// A row becomes due at `at` (a group's flush after group_wait/group_interval, a retry): claim
// then, not at the next poll. Only the earliest wake-up is kept; the claim it triggers reads
// the next one.
void wake_at(self_ptr self, std::int64_t at) {
  auto& st = self->state;
  const auto now = st.cfg.now();
  if (at <= now) {
    claim(self);
    return;
  }
  if (st.wake_at && *st.wake_at <= at)
    return;
  st.wake_at = at;
  ++st.wake_timer;
  self->delayed_send(self, std::chrono::microseconds(at - now), wake_atom::value, st.wake_timer);
}

void start_delivery(self_ptr self, outbox_item item) {
  auto& st = self->state;
  ++st.in_flight;
  ++st.in_flight_by_destination[item.destination];
  attempt_done base{item.alert_id, item.destination, 0, {}, item.attempts, {}, item.alert_ids};
  auto target = parse_webhook_url(item.webhook_url);
  // The allow-list may have changed since the rule was stored: check on every attempt. The
  // addresses are checked by the client, after resolving, on every attempt too.
  if (!target || !host_allowed(target->host, st.cfg.allowed_hosts)) {
    base.http_status = -1;  // never retried
    base.error = target ? "host_not_allowed" : "invalid_url";
    base.detail = target ? target->host + " is not in alerts.allowed_hosts" : "bad URL";
    self->send(self, std::move(base));
    return;
  }
  webhook_request req;
  req.url = item.webhook_url;
  req.body = item.payload;
  if (item.sign)
    req.headers = webhook_headers(item, st.cfg.now() / micros_per_second);
  req.timeout = st.cfg.webhook_timeout;
  req.allow_private_targets = st.cfg.allow_private_targets;
  auto me = caf::actor_cast<notifier_actor>(self);
  st.send(std::move(req), [me, base](webhook_response r) mutable {
    base.http_status = r.status;
    // A refused target stays refused until the configuration changes: retrying would only
    // repeat the refusal (and give a rebinding attacker more tries).
    if (r.status == 0 && (r.error == "target_forbidden" || r.error == "invalid_url"))
      base.http_status = -1;
    base.error = std::move(r.error);
    base.detail = std::move(r.detail);
    caf::anon_send(me, std::move(base));  // back from the I/O thread
  });
}

// Starts queued rows of destinations below their limit.
void start_queued(self_ptr self) {
  auto& st = self->state;
  for (auto& [dest, queue] : st.queued_by_destination) {
    while (!queue.empty() && st.in_flight_by_destination[dest] < st.cfg.per_destination) {
      auto item = std::move(queue.front());
      queue.pop_front();
      start_delivery(self, std::move(item));
    }
  }
}

std::size_t queued_count(const notifier_state& st) {
  std::size_t n = 0;
  for (auto& [d, q] : st.queued_by_destination)
    n += q.size();
  return n;
}

void claim(self_ptr self) {
  auto& st = self->state;
  if (st.claiming) {
    st.claim_again = true;
    return;
  }
  int capacity = st.cfg.workers - st.in_flight - static_cast<int>(queued_count(st));
  if (capacity <= 0)
    return;
  auto pool = st.pool();
  if (!pool)
    return;
  // Receivers already at their limit are left out of the claim: their rows stay claimable by
  // other instances and do not occupy our capacity.
  std::vector<std::string> busy;
  for (auto& [dest, n] : st.in_flight_by_destination) {
    auto q = st.queued_by_destination.find(dest);
    auto queued = q == st.queued_by_destination.end() ? 0 : q->second.size();
    if (n + static_cast<int>(queued) >= st.cfg.per_destination)
      busy.push_back(dest);
  }
  st.claiming = true;
  st.claim_again = false;
  db_job job;
  job.label = "alerts.claim";
  job.timeout = st.cfg.job_timeout;
  job.retry_on_disconnect = false;  // the claim commits a lease: do not run it twice
  job.run = [busy, capacity, lease = st.cfg.lease.count(),
             cap = st.cfg.group_cap](db::session& s) -> std::any {
    claim_result out;
    out.items = claim_due(s, busy, capacity, lease, cap);
    out.depth = outbox_depth(s);
    out.next_due = next_due_at(s);
    return out;
  };
  self->request(pool, job.timeout + std::chrono::milliseconds(500), std::move(job))
      .then(
          [self](db_done& done) {
            auto& st = self->state;
            st.claiming = false;
            auto* out = std::any_cast<claim_result>(&done.value);
            if (!out)
              return;
            ++st.claims;
            st.outbox_depth = out->depth.first;
            metrics::global()
                .get_gauge("joule_alert_outbox_depth", "Notifications waiting for delivery")
                .set(static_cast<double>(out->depth.first));
            metrics::global()
                .get_gauge("joule_alert_outbox_oldest_due_seconds",
                           "Age of the oldest due notification")
                .set(std::max<double>(0, static_cast<double>(out->depth.second) / 1e6));
            bool claimed_any = false;
            for (auto& item : out->items) {
              // Our own lease on a row still queued here may have run out and been claimed
              // again by us: one delivery is enough.
              if (!st.held.insert(item.alert_id).second)
                continue;
              claimed_any = true;
              st.queued_by_destination[item.destination].push_back(std::move(item));
            }
            start_queued(self);
            if (out->next_due)
              wake_at(self, *out->next_due);
            if (st.claim_again || claimed_any)
              claim(self);
          },
          [self](caf::error& err) {
            self->state.claiming = false;
            log(log_level::warn, "alerts",
                "outbox claim failed: " + failure_of(err).message);
          });
}

// The held-set key of a delivery: the id its claim was held under.
std::string done_key(const attempt_record& rec) { return rec.held_key; }

void record(self_ptr self, attempt_record rec) {
  auto pool = self->state.pool();
  if (!pool)
    return;  // the lease runs out and the row is delivered again
  db_job job;
  job.label = "alerts.record_attempt";
  job.timeout = self->state.cfg.job_timeout;
  job.run = [rec](db::session& s) {
    record_attempt(s, rec);
    return std::any{};
  };
  auto id = done_key(rec);
  self->request(pool, job.timeout + std::chrono::milliseconds(500), std::move(job))
      .then(
          [self, id](db_done&) {
            self->state.held.erase(id);
            claim(self);
          },
          [self, id](caf::error& err) {
            self->state.held.erase(id);
            log(log_level::warn, "alerts",
                "recording delivery of " + id +
                    " failed (it will be retried): " + failure_of(err).message);
            claim(self);
          });
}

void on_attempt(self_ptr self, attempt_done& done) {
  auto& st = self->state;
  --st.in_flight;
  if (--st.in_flight_by_destination[done.destination] <= 0)
    st.in_flight_by_destination.erase(done.destination);
  auto d = decide(done.http_status, done.attempts, st.cfg, jitter());
  attempt_record rec;
  rec.alert_ids = done.alert_ids.empty() ? std::vector<std::string>{done.alert_id}
                                         : done.alert_ids;
  rec.kind = d.kind;
  rec.http_status = std::max(0, done.http_status);
  rec.error = failure_class(done.http_status, done.error);
  rec.retry_in_ms = d.retry_in_ms;
  rec.held_key = done.alert_id;
  switch (d.kind) {
    case attempt_record::delivered:
      ++st.delivered;
      deliveries("ok").inc();
      break;
    case attempt_record::retry:
      ++st.retried;
      deliveries("retrying").inc();
      break;
    case attempt_record::failed:
      ++st.failed;
      deliveries("failed").inc();
      log(log_level::warn, "alerts",
          "delivery of " + done.alert_id + " to " + done.destination + " failed after " +
              std::to_string(done.attempts) + " attempt(s): " + rec.error +
              (done.detail.empty() ? "" : " (" + done.detail + ")"));
      break;
  }
  record(self, std::move(rec));
  start_queued(self);
}

// Alertmanager ends an alert it has not heard of for resolve_timeout: post every firing
// alert of an Alertmanager receiver again. Idempotent on Alertmanager's side (same labels,
// same startsAt), so a lost re-post is simply made up by the next one. Page by page
// (am_page_size incidents, one POST per receiver URL and page), the next page once this
// page's POSTs have answered: at 100,000 firing rules one POST of every alert would be tens
// of MB, and reading them all at once as much again in the server.
void resend_page(self_ptr self, std::uint64_t pass) {
  auto& st = self->state;
  if (pass != st.am_pass)
    return;  // a newer pass started
  auto pool = st.pool();
  if (!pool)
    return;
  db_job job;
  job.label = "alerts.alertmanager_firing";
  job.timeout = st.cfg.job_timeout;
  job.run = [after = st.am_after, limit = st.cfg.am_page_size](db::session& s) -> std::any {
    return firing_for_alertmanager(s, after, limit);
  };
  self->request(pool, job.timeout + std::chrono::milliseconds(500), std::move(job))
      .then(
          [self, pass](db_done& done) {
            auto& st = self->state;
            auto* out = std::any_cast<std::vector<am_firing>>(&done.value);
            if (pass != st.am_pass || !out || out->empty())
              return;
            const bool more = static_cast<int>(out->size()) >= st.cfg.am_page_size;
            st.am_after = more ? out->back().rule_id : std::string{};
            std::map<std::string, std::vector<std::string>> by_url;
            for (auto& f : *out)
              by_url[f.url].push_back(std::move(f.payload));
            auto me = caf::actor_cast<notifier_actor>(self);
            auto outstanding = std::make_shared<std::atomic<int>>(0);
            std::vector<webhook_request> posts;
            for (auto& [url, payloads] : by_url) {
              auto base = url;
              while (!base.empty() && base.back() == '/')
                base.pop_back();
              webhook_request req;
              req.url = base + "/api/v2/alerts";
              req.body = alertmanager_body(payloads);
              req.timeout = st.cfg.webhook_timeout;
              req.allow_private_targets = st.cfg.allow_private_targets;
              auto target = parse_webhook_url(req.url);
              if (!target || !host_allowed(target->host, st.cfg.allowed_hosts))
                continue;
              posts.push_back(std::move(req));
            }
            if (posts.empty()) {
              if (more)
                resend_page(self, pass);
              return;
            }
            outstanding->store(static_cast<int>(posts.size()));
            for (auto& req : posts) {
              ++st.resent;
              auto dest = parse_webhook_url(req.url)->destination();
              // Only scheme://host:port reaches the log: a path or query may carry a token.
              st.send(std::move(req), [me, dest, outstanding, pass, more](webhook_response r) {
                if (r.status < 200 || r.status >= 300)
                  log(log_level::warn, "alerts",
                      "re-posting firing alerts to Alertmanager " + dest + " failed: " +
                          failure_class(r.status, r.error));
                if (outstanding->fetch_sub(1) == 1 && more)
                  caf::anon_send(me, resend_atom::value, pass);  // the next page
              });
            }
          },
          [](caf::error& err) {
            log(log_level::warn, "alerts",
                "reading firing Alertmanager alerts failed: " + failure_of(err).message);
          });
}

void resend_alertmanager(self_ptr self) {
  auto& st = self->state;
  ++st.am_pass;  // a pass still paging is overtaken: this one starts from the beginning
  st.am_after.clear();
  resend_page(self, st.am_pass);
}

} // namespace

std::string failure_class(int http_status, const std::string& error) {
  if (http_status <= 0)
    return error.empty() ? "no_response" : error;
  if (http_status >= 200 && http_status < 300)
    return {};
  if (http_status < 100 || http_status > 599)
    return "http_invalid";
  return "http_" + std::to_string(http_status / 100) + "xx";
}

delivery_decision decide(int http_status, int attempts, const notifier_config& cfg,
                         double jitter01) {
  delivery_decision d;
  if (http_status >= 200 && http_status < 300)
    return d;
  bool retryable = http_status == 0 || http_status == 429 || http_status >= 500;
  if (!retryable || attempts >= cfg.max_attempts) {
    d.kind = attempt_record::failed;
    return d;
  }
  d.kind = attempt_record::retry;
  double base = static_cast<double>(cfg.retry_initial.count()) *
                std::pow(2.0, std::min(attempts - 1, 40));
  base = std::min(base, static_cast<double>(cfg.retry_max.count()));
  d.retry_in_ms = static_cast<std::int64_t>(base / 2 + jitter01 * base / 2);
  return d;
}

std::vector<std::pair<std::string, std::string>>
webhook_headers(const outbox_item& item, std::int64_t now_s) {
  return {
      {"X-Joule-Alert-Id", item.alert_id},
      {"X-Joule-Timestamp", std::to_string(now_s)},
      {"X-Joule-Signature", sign(item.webhook_secret, item.alert_id, now_s, item.payload)},
      {"X-Joule-Attempt", std::to_string(item.attempts)},
  };
}

notifier_actor::behavior_type notifier(self_ptr self, notifier_config cfg,
                                       std::function<db_pool_actor()> pool, webhook_sender send) {
  auto& st = self->state;
  st.cfg = cfg;
  if (!st.cfg.now)
    st.cfg.now = &now_micros;
  st.pool = std::move(pool);
  if (send) {
    st.send = std::move(send);
  } else {
    st.client = std::make_unique<webhook_client>();
    st.send = [c = st.client.get()](webhook_request r, std::function<void(webhook_response)> d) {
      c->post(std::move(r), std::move(d));
    };
  }
  self->send(self, tick_atom::value);
  self->delayed_send(self, st.cfg.alertmanager_resend, resend_atom::value);
  return {
      [self](nudge_atom) { claim(self); },
      [self](wake_atom, std::uint64_t timer) {
        auto& st = self->state;
        if (timer != st.wake_timer)
          return;  // replaced by an earlier wake-up
        st.wake_at.reset();
        claim(self);
      },
      [self](tick_atom) {
        self->delayed_send(self, self->state.cfg.poll_interval, tick_atom::value);
        claim(self);
      },
      [self](attempt_done& done) { on_attempt(self, done); },
      [self](resend_atom) {
        self->delayed_send(self, self->state.cfg.alertmanager_resend, resend_atom::value);
        resend_alertmanager(self);
      },
      [self](resend_atom, std::uint64_t pass) { resend_page(self, pass); },
      [self](status_atom) -> std::string {
        auto& st = self->state;
        std::string dests = "{";
        bool first = true;
        for (auto& [d, n] : st.in_flight_by_destination) {
          dests += (first ? "\"" : ",\"") + d + "\":" + std::to_string(n);
          first = false;
        }
        return "{\"in_flight\":" + std::to_string(st.in_flight) + ",\"by_destination\":" +
               dests + "},\"queued\":" + std::to_string(queued_count(st)) +
               ",\"outbox_depth\":" + std::to_string(st.outbox_depth) +
               ",\"delivered\":" + std::to_string(st.delivered) +
               ",\"retried\":" + std::to_string(st.retried) +
               ",\"failed\":" + std::to_string(st.failed) +
               ",\"alertmanager_resent\":" + std::to_string(st.resent) + "}";
      },
  };
}

} // namespace joule::rules
