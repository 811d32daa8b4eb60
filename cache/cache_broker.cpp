#include "cache/cache_broker.hpp"

#include "core/log.hpp"
#include "core/metrics.hpp"

namespace joule::cache {
namespace {

using self_ptr = cache_actor::stateful_pointer<cache_broker_state>;

struct cache_metrics {
  metrics::counter& hit = metrics::global().get_counter(
      "joule_cache_requests_total", "Cached reads by outcome", metrics::label("outcome", "hit"));
  metrics::counter& miss = metrics::global().get_counter(
      "joule_cache_requests_total", "Cached reads by outcome", metrics::label("outcome", "miss"));
  metrics::counter& bypass =
      metrics::global().get_counter("joule_cache_requests_total", "Cached reads by outcome",
                                    metrics::label("outcome", "bypass"));
  metrics::counter& errors =
      metrics::global().get_counter("joule_cache_redis_errors_total", "Failed Redis commands");
  metrics::counter& coalesced = metrics::global().get_counter(
      "joule_cache_coalesced_total", "Reads that joined an in-flight computation of their key");
  metrics::counter& local_hits = metrics::global().get_counter(
      "joule_cache_local_hits_total", "Hits answered by the in-process near cache (part of hit)");
  metrics::gauge& breaker_open = metrics::global().get_gauge(
      "joule_cache_breaker_open", "1 while the circuit breaker bypasses Redis");
};

cache_metrics& m() {
  static cache_metrics instance;
  return instance;
}

void count(cache_outcome o) {
  switch (o) {
    case cache_outcome::hit: m().hit.inc(); break;
    case cache_outcome::miss: m().miss.inc(); break;
    case cache_outcome::bypass: m().bypass.inc(); break;
  }
}

redis_worker_actor pick_worker(self_ptr self) {
  auto& st = self->state;
  return st.workers[st.next_worker++ % st.workers.size()];
}

std::chrono::milliseconds redis_deadline(const cache_config& cfg) {
  // A slow Redis is detected by the worker's own socket timeout (redis.timeout); this outer
  // bound only catches a stuck worker. It is generous on purpose: under CPU overload commands
  // wait in the worker's mailbox, and tripping the breaker then would send every read to the
  // (more expensive) database.
  return std::max(cfg.redis_timeout * 5, std::chrono::milliseconds{250});
}

void remember(self_ptr self, const std::string& key, const std::string& body) {
  auto& st = self->state;
  if (st.cfg.local_ttl.count() == 0)
    return;
  if (st.local.size() >= st.cfg.local_max_entries)
    st.local.clear();  // crude but bounded; entries live one second anyway
  st.local[key] = {body, self->clock().now() + st.cfg.local_ttl};
}

void open_breaker(self_ptr self) {
  auto& st = self->state;
  if (st.breaker == breaker_state::open)
    return;
  st.breaker = breaker_state::open;
  m().breaker_open.set(1);
  log(log_level::warn, "cache", "Redis failing: bypassing the cache for " +
                                    std::to_string(st.cfg.breaker_open.count()) + " ms");
  self->delayed_send(self, st.cfg.breaker_open, probe_atom::value);
}

void redis_ok(self_ptr self) {
  auto& st = self->state;
  st.consecutive_failures = 0;
}

void redis_failed(self_ptr self, const std::string& why) {
  auto& st = self->state;
  m().errors.inc();
  if (++st.consecutive_failures >= st.cfg.breaker_failures && st.breaker == breaker_state::closed) {
    log(log_level::debug, "cache", "last Redis error: " + why);
    open_breaker(self);
  }
}

void store(self_ptr self, const std::string& key, const db_answer& a) {
  auto& st = self->state;
  if (!st.cfg.enabled || st.breaker != breaker_state::closed ||
      st.redis_in_flight >= st.cfg.max_inflight)
    return;
  ++st.redis_in_flight;
  self->request(pick_worker(self), redis_deadline(st.cfg), put_atom::value, key, a.body,
                ttl_ms(st.cfg, a.live, st.rng))
      .then(
          [self](redis_reply& r) {
            --self->state.redis_in_flight;
            if (r.kind == redis_reply::error)
              redis_failed(self, r.value);
            else
              redis_ok(self);
          },
          [self](caf::error& e) {
            --self->state.redis_in_flight;
            redis_failed(self, self->system().render(e));
          });
}

// Joins (or starts) the computation of `read.key`; everyone gets the same answer.
void join_flight(self_ptr self, cached_read read, cache_outcome outcome) {
  auto& st = self->state;
  auto& waiters = st.flights[read.key];
  waiters.push_back({std::move(read.reply), outcome});
  if (waiters.size() > 1) {
    ++st.coalesced;
    m().coalesced.inc();
    return;
  }
  ++st.db_queries;
  auto key = read.key;
  auto pool = st.pool();
  auto finish = [self, key](db_answer a) {
    auto& st = self->state;
    auto it = st.flights.find(key);
    if (it == st.flights.end())
      return;
    auto waiting = std::move(it->second);
    st.flights.erase(it);
    bool any_miss = false;
    for (auto& w : waiting) {
      any_miss |= w.outcome == cache_outcome::miss;
      count(w.outcome);
      w.reply(cache_answer{a, w.outcome});
    }
    if (a.status == 200 && any_miss) {
      store(self, key, a);
      remember(self, key, a.body);
    }
  };
  // The pool enforces the job's timeout; the extra second only guards a lost pool.
  auto guard = read.job.timeout + std::chrono::seconds(1);
  self->request(pool, guard, std::move(read.job))
      .then([finish](db_answer& a) { finish(std::move(a)); },
            [self, finish](caf::error& e) {
              log(log_level::warn, "cache", "pool request failed: " + self->system().render(e));
              db_answer a;
              a.status = 503;
              a.error_code = "db_unavailable";
              a.body = "{\"error\":{\"code\":\"db_unavailable\",\"message\":\"the database "
                       "pool is not answering; retry later\"}}";
              finish(std::move(a));
            });
}

} // namespace

std::int64_t ttl_ms(const cache_config& cfg, bool live, std::minstd_rand& rng) {
  auto base = std::chrono::duration_cast<std::chrono::milliseconds>(live ? cfg.live_ttl : cfg.ttl)
                  .count();
  std::uniform_int_distribution<int> pct(cfg.jitter_min_pct * 10, cfg.jitter_max_pct * 10);
  return base + base * pct(rng) / 1000;
}

cache_actor::behavior_type cache_broker(self_ptr self, cache_config cfg,
                                        redis_worker_factory spawn_worker, pool_lookup pool) {
  auto& st = self->state;
  st.cfg = cfg;
  st.pool = std::move(pool);
  m();  // register the metrics now, so /metrics lists them from the start
  if (cfg.enabled)
    for (int i = 0; i < cfg.workers; ++i) {
      st.workers.push_back(spawn_worker(i));
      self->link_to(st.workers.back());
    }
  // The workers are linked: they stop with the broker (and a dead worker stops the broker,
  // which its supervisor then restarts with fresh connections).
  return {
      [self](cached_read& read) {
        auto& st = self->state;
        read.key = st.cfg.key_prefix + read.key;
        if (auto it = st.local.find(read.key); it != st.local.end()) {
          if (it->second.expires > self->clock().now()) {
            count(cache_outcome::hit);
            m().local_hits.inc();
            read.reply(cache_answer{db_answer{200, it->second.body, false, {}}, cache_outcome::hit});
            return;
          }
          st.local.erase(it);
        }
        // A key already being computed: wait for that answer instead of asking Redis.
        if (auto it = st.flights.find(read.key); it != st.flights.end()) {
          join_flight(self, std::move(read), cache_outcome::miss);
          return;
        }
        if (!st.cfg.enabled || st.breaker != breaker_state::closed ||
            st.redis_in_flight >= st.cfg.max_inflight) {
          join_flight(self, std::move(read), cache_outcome::bypass);
          return;
        }
        ++st.redis_in_flight;
        auto shared = std::make_shared<cached_read>(std::move(read));
        self->request(pick_worker(self), redis_deadline(st.cfg), get_atom::value, shared->key)
            .then(
                [self, shared](redis_reply& r) {
                  --self->state.redis_in_flight;
                  if (r.kind == redis_reply::hit) {
                    redis_ok(self);
                    count(cache_outcome::hit);
                    remember(self, shared->key, r.value);
                    shared->reply(cache_answer{db_answer{200, std::move(r.value), false, {}},
                                               cache_outcome::hit});
                  } else if (r.kind == redis_reply::miss) {
                    redis_ok(self);
                    join_flight(self, std::move(*shared), cache_outcome::miss);
                  } else {
                    redis_failed(self, r.value);
                    join_flight(self, std::move(*shared), cache_outcome::bypass);
                  }
                },
                [self, shared](caf::error& e) {
                  --self->state.redis_in_flight;
                  redis_failed(self, self->system().render(e));
                  join_flight(self, std::move(*shared), cache_outcome::bypass);
                });
      },
      [self](probe_atom) {
        auto& st = self->state;
        if (st.breaker != breaker_state::open)
          return;
        st.breaker = breaker_state::half_open;
        self->request(pick_worker(self), redis_deadline(st.cfg), ping_atom::value)
            .then(
                [self](redis_reply& r) {
                  auto& st = self->state;
                  if (r.kind == redis_reply::error) {
                    st.breaker = breaker_state::closed;  // lets open_breaker re-arm
                    open_breaker(self);
                    return;
                  }
                  st.breaker = breaker_state::closed;
                  st.consecutive_failures = 0;
                  m().breaker_open.set(0);
                  log(log_level::info, "cache", "Redis is back: cache in use again");
                },
                [self](caf::error&) {
                  self->state.breaker = breaker_state::closed;
                  open_breaker(self);
                });
      },
      [self](status_atom) -> std::string {
        auto& st = self->state;
        const char* b = st.breaker == breaker_state::closed  ? "closed"
                        : st.breaker == breaker_state::open ? "open"
                                                            : "half_open";
        return std::string("{\"enabled\":") + (st.cfg.enabled ? "true" : "false") +
               ",\"breaker\":\"" + b + "\",\"in_flight_keys\":" +
               std::to_string(st.flights.size()) + ",\"redis_in_flight\":" +
               std::to_string(st.redis_in_flight) + ",\"db_queries\":" +
               std::to_string(st.db_queries) + ",\"coalesced\":" + std::to_string(st.coalesced) +
               "}";
      },
  };
}

} // namespace joule::cache
