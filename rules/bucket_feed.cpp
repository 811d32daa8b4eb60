#include "rules/bucket_feed.hpp"

#include <array>
#include <cstring>
#include <memory>
#include <set>

#ifdef __GLIBC__
#include <malloc.h>
#endif

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

// The id lists and the scope index depend only on the subscriptions: rebuilt when they
// changed, not every cycle (at 100,000 rules the rebuild costs tens of milliseconds).
void reindex(bucket_feed_state& st) {
  if (!st.dirty)
    return;
  st.dirty = false;
  std::set<std::string> dev1, dev5, hh1, hh5;
  st.silent_device.clear();
  st.silent_household.clear();
  st.index_device.clear();
  st.index_household_1m.clear();
  st.index_household_5m.clear();
  st.every_cycle.clear();
  st.silence_subs.clear();
  // New or moved subscriptions need the current buckets once: everything is sent again.
  st.sent_device.clear();
  st.sent_household_1m.clear();
  st.sent_household_5m.clear();
  for (auto& [id, sub] : st.subs) {
    if (sub.silence) {
      (sub.scope == scope_kind::device ? st.silent_device : st.silent_household)
          .insert(sub.scope_id);
      st.silence_subs.push_back(&sub);
      continue;
    }
    const bool five = sub.window_us != minute_us;
    if (sub.scope == scope_kind::device) {
      (five ? dev5 : dev1).insert(sub.scope_id);
      if (!sub.every_cycle)
        st.index_device[sub.scope_id].push_back(&sub);
    } else {
      (five ? hh5 : hh1).insert(sub.scope_id);
      if (!sub.every_cycle)
        (five ? st.index_household_5m : st.index_household_1m)[sub.scope_id].push_back(&sub);
    }
    if (sub.every_cycle)
      st.every_cycle.push_back(&sub);
  }
  auto& req = st.request;
  req = feed_request{};
  req.grace_us = st.cfg.grace_us;
  req.device_5m_ids.assign(dev5.begin(), dev5.end());
  for (auto& id : dev1)
    if (!dev5.count(id))  // a 5m read covers the 1m rules of the same device
      req.device_1m_ids.push_back(id);
  req.household_1m_ids.assign(hh1.begin(), hh1.end());
  req.household_5m_ids.assign(hh5.begin(), hh5.end());
}

feed_request build_request(bucket_feed_state& st) {
  reindex(st);
  feed_request req = st.request;
  track(st.seen_device, st.silent_device, req.silence_device_ids, req.silence_device_ids_new);
  track(st.seen_household, st.silent_household, req.silence_household_ids,
        req.silence_household_ids_new);
  // Now and then every tracked scope is looked up in full again: a reading committed long
  // after its timestamp (below the watermark, outside the per-cycle tail) still proves the
  // device alive. update_seen keeps the newer of what is known and what is read.
  const auto now = std::chrono::steady_clock::now();
  if (now >= st.next_full_lookup &&
      (!req.silence_device_ids.empty() || !req.silence_household_ids.empty())) {
    st.next_full_lookup = now + std::chrono::microseconds(silence_full_lookup_us);
    for (auto& id : req.silence_device_ids)
      req.silence_device_ids_new.push_back(id);
    for (auto& id : req.silence_household_ids)
      req.silence_household_ids_new.push_back(id);
    req.silence_device_ids.clear();
    req.silence_household_ids.clear();
  }
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

// What a batch says, as a number: equal fingerprints mean nothing new to evaluate.
std::uint64_t fingerprint(const std::vector<bucket_value>& buckets) {
  std::uint64_t h = 1469598103934665603ULL;  // FNV-1a over the fields
  auto mix = [&h](std::uint64_t v) {
    for (int i = 0; i < 8; ++i) {
      h ^= (v >> (8 * i)) & 0xff;
      h *= 1099511628211ULL;
    }
  };
  auto mix_opt = [&mix](const std::optional<double>& v) {
    std::uint64_t bits = 0;
    if (v)
      std::memcpy(&bits, &*v, sizeof bits);
    mix(v ? bits : 0x7ff4dead0000beefULL);
  };
  mix(buckets.size());
  for (auto& b : buckets) {
    mix(static_cast<std::uint64_t>(b.start));
    mix(static_cast<std::uint64_t>(b.width));
    mix(b.closed ? 1 : 2);
    mix(static_cast<std::uint64_t>(b.power_count));
    mix_opt(b.energy_sum);
    mix_opt(b.power_sum);
    mix_opt(b.power_max);
  }
  return h;
}

// Sends each evaluator the buckets of its scope. Only the scopes that have buckets this
// cycle are visited (through the index), plus the subscriptions that want a batch every
// cycle: at 100,000 rules most scopes have nothing new, and walking every subscription each
// cycle was the feed's largest cost.
void distribute(self_ptr self, const feed_request& req, const feed_data& data) {
  const bool catching_up = req.catch_up_us > 0;
  auto& st = self->state;
  reindex(st);
  update_seen(st.seen_device, req.silence_device_ids_new, data.last_seen_device);
  update_seen(st.seen_household, req.silence_household_ids_new, data.last_seen_household);
  const auto closed_before = data.db_now - st.cfg.grace_us;
  const auto lo1 = feed_lookback(data.db_now, minute_us, st.cfg.grace_us);
  const std::vector<bucket_value> none;
  auto find = [&none](const auto& map, const std::string& id) -> const std::vector<bucket_value>& {
    auto it = map.find(id);
    return it == map.end() ? none : it->second;
  };
  std::unordered_map<std::string, std::vector<bucket_value>> merged_5m;  // device id → 5m
  auto buckets_of = [&](const feed_subscription& sub) {
    std::vector<bucket_value> out;
    if (sub.scope == scope_kind::device) {
      auto& one = find(data.device_1m, sub.scope_id);
      if (sub.window_us != minute_us) {
        auto it = merged_5m.find(sub.scope_id);
        if (it == merged_5m.end())
          it = merged_5m
                   .emplace(sub.scope_id, merge_buckets(one, sub.window_us, closed_before))
                   .first;
        return it->second;
      }
      // Only 1m device buckets are read for 5m device rules, whose lookback is the longer one.
      for (auto& b : one)
        if (catching_up || b.start >= lo1)
          out.push_back(b);
      return out;
    }
    return find(sub.window_us == minute_us ? data.household_1m : data.household_5m,
                sub.scope_id);
  };
  std::uint64_t sent = 0;
  auto send = [&](const feed_subscription& sub, std::vector<bucket_value> buckets) {
    if (buckets.empty() && !sub.every_cycle)
      return;
    feed_batch batch;
    batch.db_now = data.db_now;
    batch.closed_before = closed_before;
    batch.buckets = std::move(buckets);
    self->send(sub.evaluator, std::move(batch));
    ++sent;
  };
  // A scope's subscriptions get a batch only when its buckets changed since the last cycle
  // (a reading arrived, a bucket closed, a new bucket began): re-sending the same closed
  // buckets to every evaluator each cycle was 100,000 messages a second at 100,000 rules, all
  // of them skipped. (Evaluators keep a batch that arrived during a save themselves.)
  auto visit = [&](const auto& from, const auto& index, auto& fingerprints) {
    for (auto& [scope_id, buckets] : from) {
      auto it = index.find(scope_id);
      if (it == index.end())
        continue;
      auto& known = fingerprints[scope_id];  // {1m, 5m}
      std::optional<std::uint64_t> fresh[2];
      for (auto* sub : it->second) {
        auto mine = buckets_of(*sub);
        const int w = sub->window_us == minute_us ? 0 : 1;
        if (!fresh[w])
          fresh[w] = fingerprint(mine);
        if (*fresh[w] != known[w])
          send(*sub, std::move(mine));
      }
      for (int w = 0; w < 2; ++w)
        if (fresh[w])
          known[w] = *fresh[w];
    }
  };
  visit(data.device_1m, st.index_device, st.sent_device);
  visit(data.household_1m, st.index_household_1m, st.sent_household_1m);
  visit(data.household_5m, st.index_household_5m, st.sent_household_5m);
  for (auto* sub : st.every_cycle)
    send(*sub, buckets_of(*sub));
  for (auto* sub : st.silence_subs) {
    auto& seen = sub->scope == scope_kind::device ? st.seen_device : st.seen_household;
    auto it = seen.find(sub->scope_id);
    if (it == seen.end())
      continue;  // subscribed after this cycle's request: its lookup runs next cycle
    feed_batch batch;
    batch.db_now = data.db_now;
    batch.closed_before = closed_before;
    batch.last_seen = it->second;
    self->send(sub->evaluator, std::move(batch));
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

// Loading 100,000 rules allocates a query result, the rule list and a message per rule,
// all freed once the evaluators run, but glibc keeps those pages in the heap between the
// long-lived evaluators: ~85 MB of RSS at 100k rules (392 → 307 MiB measured). Once the
// subscriptions have been quiet for a moment after a burst of changes, give them back.
void trim_after_churn(bucket_feed_state& st) {
  constexpr std::uint64_t burst = 1000;
  if (st.churn < burst ||
      std::chrono::steady_clock::now() - st.last_change < std::chrono::seconds(2))
    return;
  st.churn = 0;
#ifdef __GLIBC__
  malloc_trim(0);
#endif
}

void run_cycle(self_ptr self) {
  auto& st = self->state;
  trim_after_churn(st);
  if (st.running || st.subs.empty())
    return;
  if (st.cfg.live) {
    // One feed, two consumers: the live tail read every bucket already. silence_sec rules
    // need each scope's newest reading and a catch-up needs 15 min of buckets: the snapshot
    // holds neither, so those cycles read the database as before. Checked without touching
    // the index: polls come every live_poll, and rule churn must not rebuild it each time.
    const bool needs_db = st.catch_up_us > 0 || st.silence_count > 0;
    auto snap = needs_db ? nullptr
                         : st.cfg.live->fresh(std::max<std::chrono::steady_clock::duration>(
                               st.cfg.interval * 3, std::chrono::seconds(3)));
    if (snap && snap->seq == st.last_snapshot)
      return;  // distributed already
    if (snap)
      reindex(st);
    if (snap && snap->devices_ok &&
        (snap->households_ok || st.request.household_5m_ids.empty())) {
      // Polled every live_poll: a new snapshot is distributed as soon as it is published,
      // not up to a whole feed interval later (the two timers drift against each other).
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
        auto req = build_request(st);
        distribute(self, req, feed_from_snapshot(*snap, req));
        st.last_duration_ms = std::chrono::duration<double, std::milli>(
                                  std::chrono::steady_clock::now() - started)
                                  .count();
        record_cycle(st.last_duration_ms);
      }
      return;
    }
  }
  // Database cycles keep the feed interval, whatever the tick.
  const auto now = std::chrono::steady_clock::now();
  if (now < st.next_db_cycle)
    return;
  st.next_db_cycle = now + st.cfg.interval;
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
        auto& st = self->state;
        // The key holds the id; the copy in the subscription is not needed (memory per rule).
        auto id = std::move(sub.rule_id);
        auto [it, fresh] = st.subs.try_emplace(std::move(id));
        if (!fresh && it->second.silence)
          --st.silence_count;
        it->second = std::move(sub);
        if (it->second.silence)
          ++st.silence_count;
        st.dirty = true;
        ++st.churn;
        st.last_change = std::chrono::steady_clock::now();
        metrics::global()
            .get_gauge("joule_alert_feed_subscriptions", "Evaluators fed by the bucket feed")
            .set(static_cast<double>(self->state.subs.size()));
      },
      [self](unsubscribe_atom, const std::string& rule_id) {
        auto& st = self->state;
        auto it = st.subs.find(rule_id);
        if (it != st.subs.end()) {
          if (it->second.silence)
            --st.silence_count;
          st.subs.erase(it);
          st.dirty = true;
          ++st.churn;
          st.last_change = std::chrono::steady_clock::now();
        }
        metrics::global()
            .get_gauge("joule_alert_feed_subscriptions", "Evaluators fed by the bucket feed")
            .set(static_cast<double>(self->state.subs.size()));
      },
      [self](catch_up_atom, std::int64_t us) { self->state.catch_up_us = us; },
      [self](tick_atom) {
        auto& cfg = self->state.cfg;
        self->delayed_send(self, cfg.live ? std::min(cfg.live_poll, cfg.interval) : cfg.interval,
                           tick_atom::value);
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
