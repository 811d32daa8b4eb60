#include "cache/cache_broker.hpp"

#include <optional>

#include <caf/actor_system.hpp>

#include "cache/redis_client.hpp"
#include "cache/redis_worker.hpp"

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

// `key` without the Redis prefix.
void remember(self_ptr self, const std::string& key, const std::string& body) {
  self->state.near->put(key, body, self->clock().now());
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

void store(self_ptr self, const std::string& key, const std::string& body, bool live) {
  auto& st = self->state;
  if (!st.cfg.enabled || st.breaker != breaker_state::closed ||
      st.redis_in_flight >= st.cfg.max_inflight)
    return;
  ++st.redis_in_flight;
  self->request(pick_worker(self), redis_deadline(st.cfg), put_atom::value, key, body,
                ttl_ms(st.cfg, live, st.rng))
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

cache_lookup answer(cache_outcome outcome, std::string body) {
  cache_lookup l;
  l.outcome = outcome;
  l.found = true;
  l.body = std::move(body);
  return l;
}

// The caller behind `rp` computes `key` (or, if someone already does, waits for that answer).
void compute_or_wait(self_ptr self, const std::string& key,
                     caf::typed_response_promise<cache_lookup> rp, cache_outcome outcome) {
  auto& st = self->state;
  if (auto it = st.flights.find(key); it != st.flights.end()) {
    ++st.coalesced;
    m().coalesced.inc();
    it->second.waiters.push_back(std::move(rp));
    return;
  }
  auto& f = st.flights[key];
  f.id = st.next_flight++;
  f.outcome = outcome;
  ++st.db_queries;
  count(outcome);
  self->delayed_send(self, st.cfg.flight_timeout, expire_atom::value, key, f.id);
  cache_lookup l;
  l.outcome = outcome;
  l.compute = true;
  rp.deliver(std::move(l));
}

// Ends the flight of `key`, if any, and returns it.
std::optional<cache_broker_state::flight> land(self_ptr self, const std::string& key) {
  auto& st = self->state;
  auto it = st.flights.find(key);
  if (it == st.flights.end())
    return std::nullopt;
  auto f = std::move(it->second);
  st.flights.erase(it);
  return f;
}

void release_with_error(self_ptr self, const std::string& key, const caf::error& err) {
  if (auto f = land(self, key))
    for (auto& w : f->waiters) {
      count(f->outcome);
      w.deliver(err);
    }
}

} // namespace

std::int64_t ttl_ms(const cache_config& cfg, bool live, std::minstd_rand& rng) {
  auto base = std::chrono::duration_cast<std::chrono::milliseconds>(live ? cfg.live_ttl : cfg.ttl)
                  .count();
  std::uniform_int_distribution<int> pct(cfg.jitter_min_pct * 10, cfg.jitter_max_pct * 10);
  return base + base * pct(rng) / 1000;
}

cache_actor spawn_cache_broker(caf::actor_system& sys, cache_config cfg, std::string host,
                               std::uint16_t port) {
  auto spawn_worker = [&sys, host, port, t = cfg.redis_timeout](int) {
    return sys.spawn<caf::detached>(redis_worker, host, port, t);
  };
  return sys.spawn(cache_broker, std::move(cfg), spawn_worker);
}

std::shared_ptr<near_cache> make_near_cache(const config::settings& s) {
  return std::make_shared<near_cache>(s.cache_local_ttl,
                                      static_cast<std::size_t>(s.cache_local_max_entries));
}

cache_actor spawn_cache_broker(caf::actor_system& sys, const config::settings& s,
                               std::shared_ptr<near_cache> near) {
  cache_config cc;
  cc.enabled = !s.redis_url.empty();
  cc.workers = s.redis_workers;
  cc.redis_timeout = s.redis_timeout;
  cc.ttl = s.cache_ttl;
  cc.live_ttl = s.cache_live_ttl;
  cc.jitter_min_pct = s.cache_jitter_min_pct;
  cc.jitter_max_pct = s.cache_jitter_max_pct;
  cc.breaker_failures = s.cache_breaker_failures;
  cc.breaker_open = s.cache_breaker_open;
  cc.max_inflight = s.cache_max_inflight;
  cc.local_ttl = s.cache_local_ttl;
  cc.local_max_entries = static_cast<std::size_t>(s.cache_local_max_entries);
  cc.near = near ? std::move(near) : make_near_cache(s);
  // A computing caller answers within the pool deadline; past that its waiters are released.
  cc.flight_timeout = s.db_request_deadline + std::chrono::seconds(1);
  std::string host;
  std::uint16_t port = 0;
  if (cc.enabled)
    parse_redis_url(s.redis_url, host, port);
  return spawn_cache_broker(sys, cc, host, port);
}

cache_actor::behavior_type cache_broker(self_ptr self, cache_config cfg,
                                        redis_worker_factory spawn_worker) {
  auto& st = self->state;
  st.cfg = cfg;
  st.near = cfg.near ? cfg.near : std::make_shared<near_cache>(cfg.local_ttl, cfg.local_max_entries);
  m();  // register the metrics now, so /metrics lists them from the start
  if (cfg.enabled)
    for (int i = 0; i < cfg.workers; ++i) {
      st.workers.push_back(spawn_worker(i));
      self->link_to(st.workers.back());
    }
  // The workers are linked: they stop with the broker (and a dead worker stops the broker,
  // which its supervisor then restarts with fresh connections).
  return {
      [self](get_atom, std::string& key) -> caf::typed_response_promise<cache_lookup> {
        auto& st = self->state;
        auto rp = self->make_response_promise<cache_lookup>();
        // The HTTP side looks here first too; this covers callers that do not.
        if (auto body = st.near->find(key, self->clock().now())) {
          rp.deliver(answer(cache_outcome::hit, std::move(*body)));
          return rp;
        }
        auto plain = key;
        key = st.cfg.key_prefix + key;
        // A key already being computed: wait for that answer instead of asking Redis.
        if (st.flights.count(key)) {
          compute_or_wait(self, key, rp, cache_outcome::miss);
          return rp;
        }
        if (!st.cfg.enabled || st.breaker != breaker_state::closed ||
            st.redis_in_flight >= st.cfg.max_inflight) {
          compute_or_wait(self, key, rp, cache_outcome::bypass);
          return rp;
        }
        ++st.redis_in_flight;
        self->request(pick_worker(self), redis_deadline(st.cfg), get_atom::value, key)
            .then(
                [self, key, plain, rp](redis_reply& r) mutable {
                  --self->state.redis_in_flight;
                  if (r.kind == redis_reply::hit) {
                    redis_ok(self);
                    count(cache_outcome::hit);
                    remember(self, plain, r.value);
                    rp.deliver(answer(cache_outcome::hit, std::move(r.value)));
                  } else if (r.kind == redis_reply::miss) {
                    redis_ok(self);
                    compute_or_wait(self, key, rp, cache_outcome::miss);
                  } else {
                    redis_failed(self, r.value);
                    compute_or_wait(self, key, rp, cache_outcome::bypass);
                  }
                },
                [self, key, rp](caf::error& e) mutable {
                  --self->state.redis_in_flight;
                  redis_failed(self, self->system().render(e));
                  compute_or_wait(self, key, rp, cache_outcome::bypass);
                });
        return rp;
      },
      [self](put_atom, std::string& plain, std::string& body, bool live) {
        auto key = self->state.cfg.key_prefix + plain;
        auto f = land(self, key);
        if (f)
          for (auto& w : f->waiters) {
            count(f->outcome);
            w.deliver(answer(f->outcome, body));
          }
        // Only an answer computed after a Redis miss goes to Redis: a bypass means Redis is
        // failing or saturated right now.
        if (f && f->outcome == cache_outcome::miss) {
          store(self, key, body, live);
          remember(self, plain, body);
        }
      },
      [self](drop_atom, std::string& key, caf::error& err) {
        release_with_error(self, self->state.cfg.key_prefix + key, err);
      },
      [self](expire_atom, std::string& key, std::uint64_t id) {
        auto it = self->state.flights.find(key);
        if (it == self->state.flights.end() || it->second.id != id)
          return;
        release_with_error(self, key,
                           make_error(errc::timeout, "timeout",
                                      "the answer took too long to compute; retry"));
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
