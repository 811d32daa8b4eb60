#include "cache/near_cache.hpp"

#include <algorithm>
#include <functional>

#include "core/metrics.hpp"

namespace joule::cache {
namespace {

struct near_metrics {
  metrics::counter& hit = metrics::global().get_counter(
      "joule_cache_requests_total", "Cached reads by outcome", metrics::label("outcome", "hit"));
  metrics::counter& local_hits = metrics::global().get_counter(
      "joule_cache_local_hits_total", "Hits answered by the in-process near cache (part of hit)");
};

near_metrics& m() {
  static near_metrics instance;
  return instance;
}

} // namespace

near_cache::near_cache(std::chrono::milliseconds ttl, std::size_t max_entries, bool count_hits,
                       std::size_t max_bytes)
    : ttl_(ttl), max_per_shard_(std::max<std::size_t>(1, max_entries / shard_count)),
      max_bytes_per_shard_(std::max<std::size_t>(1, max_bytes / shard_count)),
      count_hits_(count_hits) {
  m();
}

near_cache::shard& near_cache::shard_of(const std::string& key) {
  return shards_[std::hash<std::string>{}(key) % shard_count];
}

std::optional<std::string> near_cache::find(const std::string& key, time_point now) {
  if (!enabled())
    return std::nullopt;
  std::optional<std::string> body;
  {
    auto& s = shard_of(key);
    std::lock_guard<std::mutex> g{s.mtx};
    auto it = s.entries.find(key);
    if (it == s.entries.end())
      return std::nullopt;
    if (it->second.expires <= now) {
      s.bytes -= key.size() + it->second.body.size();
      s.entries.erase(it);
      return std::nullopt;
    }
    body = it->second.body;
  }
  if (count_hits_) {
    m().hit.inc();
    m().local_hits.inc();
  }
  return body;
}

void near_cache::put(const std::string& key, const std::string& body, time_point now) {
  put(key, body, now, ttl_);
}

void near_cache::put(const std::string& key, const std::string& body, time_point now,
                     std::chrono::milliseconds ttl) {
  if (!enabled())
    return;
  const std::size_t size = key.size() + body.size();
  if (size > max_bytes_per_shard_)
    return;  // larger than a shard's whole budget: not worth holding
  auto& s = shard_of(key);
  std::lock_guard<std::mutex> g{s.mtx};
  if (auto it = s.entries.find(key); it != s.entries.end()) {
    s.bytes -= key.size() + it->second.body.size();
    s.entries.erase(it);
  }
  if (s.entries.size() >= max_per_shard_ || s.bytes + size > max_bytes_per_shard_) {
    s.entries.clear();  // crude but bounded; entries are cheap to recompute
    s.bytes = 0;
  }
  s.entries[key] = entry{body, now + ttl};
  s.bytes += size;
}

std::size_t near_cache::erase_if(const std::function<bool(const std::string&)>& pred) {
  std::size_t n = 0;
  for (auto& s : shards_) {
    std::lock_guard<std::mutex> g{s.mtx};
    for (auto it = s.entries.begin(); it != s.entries.end();)
      if (pred(it->first)) {
        s.bytes -= it->first.size() + it->second.body.size();
        it = s.entries.erase(it);
        ++n;
      } else {
        ++it;
      }
  }
  return n;
}

void near_cache::clear() {
  for (auto& s : shards_) {
    std::lock_guard<std::mutex> g{s.mtx};
    s.entries.clear();
    s.bytes = 0;
  }
}

std::size_t near_cache::size() const {
  std::size_t n = 0;
  for (auto& s : shards_) {
    std::lock_guard<std::mutex> g{s.mtx};
    n += s.entries.size();
  }
  return n;
}

} // namespace joule::cache
