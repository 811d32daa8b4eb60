#pragma once
// The cache broker: answers reads from Redis when it can, lets exactly one caller compute each
// missing key while the others wait for its answer (single-flight), and bypasses Redis through
// a circuit breaker when it is down or slow. It stores opaque bodies: what a key means and how
// its answer is computed and rendered is the caller's business (http/).

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include <caf/typed_response_promise.hpp>

#include "cache/near_cache.hpp"
#include "config/settings.hpp"
#include "core/interfaces.hpp"

namespace joule::cache {

struct cache_config {
  bool enabled = true;  // false: every read is a bypass
  int workers = 2;
  std::chrono::milliseconds redis_timeout{50};
  std::chrono::seconds ttl{60};
  std::chrono::seconds live_ttl{5};
  int jitter_min_pct = 10;
  int jitter_max_pct = 20;
  int breaker_failures = 3;
  std::chrono::milliseconds breaker_open{2000};
  int max_inflight = 512;
  /// In-process near cache in front of Redis (0 disables): hot keys skip the Redis round trip.
  std::chrono::milliseconds local_ttl{1000};
  std::size_t local_max_entries = 20000;
  /// The near cache to fill; shared with the HTTP handlers, which read it without a message.
  /// Null: the broker makes a private one from local_ttl and local_max_entries.
  std::shared_ptr<near_cache> near;
  std::string key_prefix = "joule:v1:";
  /// Longest a computing caller may take before the callers waiting for the key are released
  /// with a timeout (a caller that vanished must not hold them forever).
  std::chrono::milliseconds flight_timeout{4000};
};

/// Spawns Redis worker number i (detached in production, a mock in tests).
using redis_worker_factory = std::function<redis_worker_actor(int index)>;

enum class breaker_state : std::uint8_t { closed, open, half_open };

struct cache_broker_state {
  static inline const char* name = "cache_broker";
  /// A key being computed by one caller, and everyone waiting for its answer.
  struct flight {
    std::uint64_t id = 0;
    cache_outcome outcome = cache_outcome::miss;  // the computing caller's: miss or bypass
    std::vector<caf::typed_response_promise<cache_lookup>> waiters;
  };
  cache_config cfg;
  std::vector<redis_worker_actor> workers;
  std::size_t next_worker = 0;
  breaker_state breaker = breaker_state::closed;
  int consecutive_failures = 0;
  int redis_in_flight = 0;
  /// The near cache: answers held for at most local_ttl (never longer than in Redis), keyed
  /// without the Redis key prefix.
  std::shared_ptr<near_cache> near;
  /// Keys being computed.
  std::unordered_map<std::string, flight> flights;
  std::uint64_t next_flight = 1;
  std::uint64_t db_queries = 0;  // computations handed out
  std::uint64_t coalesced = 0;
  std::minstd_rand rng{std::random_device{}()};
};

cache_actor::behavior_type cache_broker(cache_actor::stateful_pointer<cache_broker_state> self,
                                        cache_config cfg, redis_worker_factory spawn_worker);

/// Spawns the broker with `cfg.workers` detached Redis workers on host:port (none when the
/// cache is disabled).
cache_actor spawn_cache_broker(caf::actor_system& sys, cache_config cfg, std::string host,
                               std::uint16_t port);
/// The same from the server settings (redis.*, cache.*); no Redis when redis.url is empty.
/// `near` is the near cache shared with the HTTP side (see make_near_cache).
cache_actor spawn_cache_broker(caf::actor_system& sys, const config::settings& s,
                               std::shared_ptr<near_cache> near = nullptr);

/// The near cache as configured by cache.local_ttl and cache.local_max_entries.
std::shared_ptr<near_cache> make_near_cache(const config::settings& s);

/// TTL in ms for an answer: live answers get live_ttl, settled ones ttl; both stretched by a
/// random jitter in [min_pct, max_pct] so that entries made together do not expire together.
std::int64_t ttl_ms(const cache_config& cfg, bool live, std::minstd_rand& rng);

} // namespace joule::cache
