#pragma once
// The cache broker: answers reads from Redis when it can, computes each missing key once
// (single-flight), and bypasses Redis through a circuit breaker when it is down or slow.

#include <chrono>
#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

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
  std::string key_prefix = "joule:v1:";
};

/// Spawns Redis worker number i (detached in production, a mock in tests).
using redis_worker_factory = std::function<redis_worker_actor(int index)>;
/// The DB pool to compute misses with (looked up per use, so a restarted pool is found).
using pool_lookup = std::function<db_pool_actor()>;

enum class breaker_state : std::uint8_t { closed, open, half_open };

struct cache_broker_state {
  static inline const char* name = "cache_broker";
  struct waiter {
    std::function<void(cache_answer)> reply;
    cache_outcome outcome;
  };
  cache_config cfg;
  std::vector<redis_worker_actor> workers;
  std::size_t next_worker = 0;
  pool_lookup pool;
  breaker_state breaker = breaker_state::closed;
  int consecutive_failures = 0;
  int redis_in_flight = 0;
  struct local_entry {
    std::string body;
    caf::actor_clock::time_point expires;
  };
  /// The near cache: answers held for at most local_ttl (never longer than in Redis).
  std::unordered_map<std::string, local_entry> local;
  /// In-flight computations per key and everyone waiting for them.
  std::unordered_map<std::string, std::vector<waiter>> flights;
  std::uint64_t db_queries = 0;
  std::uint64_t coalesced = 0;
  std::minstd_rand rng{std::random_device{}()};
};

cache_actor::behavior_type cache_broker(cache_actor::stateful_pointer<cache_broker_state> self,
                                        cache_config cfg, redis_worker_factory spawn_worker,
                                        pool_lookup pool);

/// TTL in ms for an answer: live answers get live_ttl, settled ones ttl; both stretched by a
/// random jitter in [min_pct, max_pct] so that entries made together do not expire together.
std::int64_t ttl_ms(const cache_config& cfg, bool live, std::minstd_rand& rng);

} // namespace joule::cache
