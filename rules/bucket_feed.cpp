#include "rules/bucket_feed.hpp"

#include <memory>
#include <set>

#include <caf/typed_event_based_actor.hpp>

#include "core/log.hpp"
#include "core/metrics.hpp"
#include "rules/feed_sql.hpp"

namespace joule::rules {
namespace {

using self_ptr = bucket_feed_actor::stateful_pointer<bucket_feed_state>;

template <class Map>
void track(Map& seen, const std::set<std::string>& ids, std::vector<std::string>& known,
           std::vector<std::string>& fresh) {
  for (auto it = seen.begin(); it != seen.end();)
    it = ids.count(it->first) ? std::next(it) : seen.erase(it);  // no longer watched
  for (auto& id : ids)
    (seen.count(id) ? known : fresh).push_back(id);
}

feed_request build_request(bucket_feed_state& st) {
  std::set<std::string> dev1, dev5, hh1, hh5, silent_dev, silent_hh;
  for (auto& [id, sub] : st.subs) {
    if (sub.silence) {
      (sub.scope == scope_kind::device ? silent_dev : silent_hh).insert(sub.scope_id);
      continue;
    }
    bool five = sub.window_us != minute_us;
    if (sub.scope == scope_kind::device)
      (five ? dev5 : dev1).insert(sub.scope_id);
    else
      (five ? hh5 : hh1).insert(sub.scope_id);
  }
  feed_request req;
  req.grace_us = st.cfg.grace_us;
  for (auto& id : dev5)
    req.device_5m_ids.push_back(id);
  for (auto& id : dev1)
    if (!dev5.count(id))  // a 5m read covers the 1m rules of the same device
      req.device_1m_ids.push_back(id);
  req.household_1m_ids.assign(hh1.begin(), hh1.end());
  req.household_5m_ids.assign(hh5.begin(), hh5.end());
  track(st.seen_device, silent_dev, req.silence_device_ids, req.silence_device_ids_new);
  track(st.seen_household, silent_hh, req.silence_household_ids, req.silence_household_ids_new);
  return req;
}

// Newest readings read this cycle, merged into what the feed knows.
void update_seen(std::unordered_map<std::string, std::optional<std::int64_t>>& seen,
                 const std::vector<std::string>& fresh,
                 const std::unordered_map<std::string, std::int64_t>& read) {
  for (auto& id : fresh)
    seen.emplace(id, std::nullopt);  // looked up in full: absent means it never reported
  for (auto& [id, t] : read) {
    auto it = seen.find(id);
    if (it != seen.end() && (!it->second || *it->second < t))
      it->second = t;
  }
}

void distribute(self_ptr self, const feed_request& req, const feed_data& data) {
  const bool catching_up = req.catch_up_us > 0;
  auto& st = self->state;
  update_seen(st.seen_device, req.silence_device_ids_new, data.last_seen_device);
  update_seen(st.seen_household, req.silence_household_ids_new, data.last_seen_household);
  const auto closed_before = data.db_now - st.cfg.grace_us;
  const std::vector<bucket_value> none;
  auto find = [&none](const auto& map, const std::string& id) -> const std::vector<bucket_value>& {
    auto it = map.find(id);
    return it == map.end() ? none : it->second;
  };
  std::unordered_map<std::string, std::vector<bucket_value>> merged_5m;  // device id → 5m
  std::uint64_t sent = 0;
  for (auto& [rule_id, sub] : st.subs) {
    feed_batch batch;
    batch.db_now = data.db_now;
    batch.closed_before = closed_before;
    if (sub.silence) {
      auto& seen = sub.scope == scope_kind::device ? st.seen_device : st.seen_household;
      auto it = seen.find(sub.scope_id);
      if (it == seen.end())
        continue;  // subscribed after this cycle's request: its lookup runs next cycle
      batch.last_seen = it->second;
      self->send(sub.evaluator, std::move(batch));
      ++sent;
      continue;
    }
    if (sub.scope == scope_kind::device) {
      if (sub.window_us == minute_us) {
        batch.buckets = find(data.device_1m, sub.scope_id);
      } else {
        auto it = merged_5m.find(sub.scope_id);
        if (it == merged_5m.end())
          it = merged_5m
                   .emplace(sub.scope_id, merge_buckets(find(data.device_1m, sub.scope_id),
                                                        sub.window_us, closed_before))
                   .first;
        batch.buckets = it->second;
      }
    } else {
      batch.buckets = find(sub.window_us == minute_us ? data.household_1m : data.household_5m,
                           sub.scope_id);
    }
    // Only 1m device buckets are read for 5m device rules, whose lookback is the longer one.
    if (sub.scope == scope_kind::device && sub.window_us == minute_us && !catching_up) {
      auto lo = feed_lookback(data.db_now, minute_us, st.cfg.grace_us);
      std::vector<bucket_value> recent;
      for (auto& b : batch.buckets)
        if (b.start >= lo)
          recent.push_back(b);
      batch.buckets.swap(recent);
    }
    if (batch.buckets.empty() && !sub.every_cycle)
      continue;
    self->send(sub.evaluator, std::move(batch));
    ++sent;
  }
  st.last_batches_sent = sent;
}

void record_cycle(double ms) {
  metrics::global()
      .get_histogram("joule_alert_feed_cycle_seconds",
                     "Duration of one bucket feed cycle (all rules' queries)")
      .observe(ms / 1000.0);
  metrics::global()
      .get_gauge("joule_alert_feed_last_cycle_seconds", "Duration of the latest bucket feed cycle")
      .set(ms / 1000.0);
}

void run_cycle(self_ptr self) {
  auto& st = self->state;
  if (st.running || st.subs.empty())
    return;
  if (st.cfg.live) {
    // One feed, two consumers: the live tail read every bucket already.
    auto snap = st.cfg.live->fresh(std::max<std::chrono::steady_clock::duration>(
        st.cfg.interval * 3, std::chrono::seconds(3)));
    auto req = build_request(st);
    // silence_sec rules need each scope's newest reading and a catch-up needs 15 min of
    // buckets: the snapshot holds neither, so those cycles read the database as before.
    const bool needs_db = st.catch_up_us > 0 || !req.silence_device_ids.empty() ||
                          !req.silence_device_ids_new.empty() ||
                          !req.silence_household_ids.empty() ||
                          !req.silence_household_ids_new.empty();
    bool usable = snap && !needs_db && snap->devices_ok &&
                  (snap->households_ok || req.household_5m_ids.empty());
    if (usable) {
      if (snap->seq != st.last_snapshot) {
        auto started = std::chrono::steady_clock::now();
        st.last_snapshot = snap->seq;
        ++st.cycles;
        ++st.from_snapshot;
        metrics::global()
            .get_counter("joule_alert_feed_live_cycles_total",
                         "Bucket feed cycles served from the live tail's snapshot (no query)")
            .inc();
        st.last_db_now = snap->db_now;
        distribute(self, req, feed_from_snapshot(*snap, req));
        st.last_duration_ms = std::chrono::duration<double, std::milli>(
                                  std::chrono::steady_clock::now() - started)
                                  .count();
        record_cycle(st.last_duration_ms);
      }
      return;
    }
  }
  auto pool = st.pool();
  if (!pool)
    return;
  st.running = true;
  auto req = std::make_shared<feed_request>(build_request(st));
  req->catch_up_us = st.catch_up_us;
  auto data = std::make_shared<feed_data>();
  db_job job;
  job.label = "alerts.feed";
  job.timeout = st.cfg.job_timeout;
  job.run = [req, data](db::session& s) {
    *data = read_feed(s, *req);
    return std::any{};
  };
  auto started = std::chrono::steady_clock::now();
  self->request(pool, job.timeout + std::chrono::milliseconds(500), std::move(job))
      .then(
          [self, req, data, started](db_done&) {
            auto& st = self->state;
            st.running = false;
            ++st.cycles;
            st.last_duration_ms =
                std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() -
                                                          started)
                    .count();
            record_cycle(st.last_duration_ms);
            st.last_db_now = data->db_now;
            if (req->catch_up_us > 0) {
              st.catch_up_us = 0;  // done: live cycles read only the newest buckets again
              log(log_level::info, "alerts",
                  "caught up on buckets closed in the last " +
                      std::to_string(req->catch_up_us / 1'000'000) + " s");
            }
            distribute(self, *req, *data);
          },
          [self](caf::error& err) {
            auto& st = self->state;
            st.running = false;
            ++st.failures;
            metrics::global()
                .get_counter("joule_alert_feed_failures_total", "Bucket feed cycles that failed")
                .inc();
            log(log_level::warn, "alerts", "bucket feed cycle failed: " + failure_of(err).message);
          });
}

} // namespace

bucket_feed_actor::behavior_type bucket_feed(self_ptr self, bucket_feed_config cfg,
                                             std::function<db_pool_actor()> pool) {
  self->state.cfg = cfg;
  self->state.pool = std::move(pool);
  self->send(self, tick_atom::value);
  return {
      [self](subscribe_atom, feed_subscription& sub) {
        auto id = sub.rule_id;
        self->state.subs[id] = std::move(sub);
        metrics::global()
            .get_gauge("joule_alert_feed_subscriptions", "Evaluators fed by the bucket feed")
            .set(static_cast<double>(self->state.subs.size()));
      },
      [self](unsubscribe_atom, const std::string& rule_id) {
        self->state.subs.erase(rule_id);
        metrics::global()
            .get_gauge("joule_alert_feed_subscriptions", "Evaluators fed by the bucket feed")
            .set(static_cast<double>(self->state.subs.size()));
      },
      [self](catch_up_atom, std::int64_t us) { self->state.catch_up_us = us; },
      [self](tick_atom) {
        self->delayed_send(self, self->state.cfg.interval, tick_atom::value);
        run_cycle(self);
      },
      [self](status_atom) -> std::string {
        auto& st = self->state;
        return "{\"subscriptions\":" + std::to_string(st.subs.size()) +
               ",\"cycles\":" + std::to_string(st.cycles) +
               ",\"failures\":" + std::to_string(st.failures) +
               ",\"last_duration_ms\":" + std::to_string(st.last_duration_ms) +
               ",\"last_batches_sent\":" + std::to_string(st.last_batches_sent) +
               ",\"from_live_tail\":" + std::to_string(st.from_snapshot) + "}";
      },
  };
}

} // namespace joule::rules
