#pragma once
// The in-process near cache in front of Redis: rendered answers held for at most
// cache.local_ttl. Shared by the cache broker (which fills it) and the HTTP route handlers
// (which read it before messaging the broker): a hot answer then costs no actor hop at all,
// only a map lookup on the session actor's own thread. Thread-safe, sharded to keep lock
// contention between CAF worker threads low. Times come from the caller (an actor clock), so
// deterministic tests can drive expiry.

#include <array>
#include <chrono>
#include <cstddef>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include <caf/actor_clock.hpp>

namespace joule::cache {

class near_cache {
public:
  using time_point = caf::actor_clock::time_point;

  /// ttl 0 disables the cache (find never hits, put stores nothing). max_entries and
  /// max_bytes (keys plus bodies) bound memory: a client choosing many distinct windows must
  /// not grow it by entry count times body size. `count_hits` false: hits are not counted as
  /// answer-cache hits (a store of answer parts).
  near_cache(std::chrono::milliseconds ttl, std::size_t max_entries, bool count_hits = true,
             std::size_t max_bytes = std::size_t{256} << 20);

  bool enabled() const { return ttl_.count() > 0; }

  /// The body stored under `key` if it has not expired at `now`; a hit is counted in
  /// joule_cache_requests_total{outcome="hit"} and joule_cache_local_hits_total.
  std::optional<std::string> find(const std::string& key, time_point now);

  /// Stores `body` under `key` until now + ttl.
  void put(const std::string& key, const std::string& body, time_point now);
  /// Stores `body` under `key` until now + `ttl` (entries whose key names a version of their
  /// data may live longer than the cache's own ttl); nothing when the cache is disabled.
  void put(const std::string& key, const std::string& body, time_point now,
           std::chrono::milliseconds ttl);

  /// Drops every entry whose key satisfies `pred`; returns how many.
  std::size_t erase_if(const std::function<bool(const std::string& key)>& pred);
  /// Drops everything.
  void clear();

  std::size_t size() const;

private:
  struct entry {
    std::string body;
    time_point expires;
  };
  struct shard {
    mutable std::mutex mtx;
    std::unordered_map<std::string, entry> entries;
    std::size_t bytes = 0;  // keys plus bodies held
  };
  static constexpr std::size_t shard_count = 16;
  shard& shard_of(const std::string& key);

  std::chrono::milliseconds ttl_;
  std::size_t max_per_shard_;
  std::size_t max_bytes_per_shard_;
  bool count_hits_;
  std::array<shard, shard_count> shards_;
};

} // namespace joule::cache
