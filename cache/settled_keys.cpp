#include "cache/settled_keys.hpp"

#include <cstdio>
#include <cstdlib>
#include <functional>

namespace joule::cache {

std::string settled_key(const std::string& rollup, const std::string& id, std::int64_t step,
                        std::int64_t lo, std::int64_t hi, const std::string& versions) {
  char hash[24];
  std::snprintf(hash, sizeof hash, "%016zx", std::hash<std::string>{}(versions));
  return "s:" + rollup + ":" + id + ":" + std::to_string(step) + ":" + std::to_string(lo) + ":" +
         std::to_string(hi) + ":" + hash;
}

bool settled_key_overlaps(const std::string& key, const std::string& rollup, std::int64_t lo,
                          std::int64_t hi) {
  auto prefix = "s:" + rollup + ":";
  if (key.compare(0, prefix.size(), prefix) != 0)
    return false;
  // After the prefix: <id>:<step>:<lo>:<hi>:<version>
  auto p_id = key.find(':', prefix.size());
  auto p_step = p_id == std::string::npos ? p_id : key.find(':', p_id + 1);
  auto p_lo = p_step == std::string::npos ? p_step : key.find(':', p_step + 1);
  if (p_lo == std::string::npos)
    return true;
  const char* s = key.c_str();
  char* end = nullptr;
  long long klo = std::strtoll(s + p_step + 1, &end, 10);
  if (end != s + p_lo)
    return true;
  long long khi = std::strtoll(s + p_lo + 1, &end, 10);
  if (*end != ':')
    return true;
  return klo < hi && lo < khi;
}

std::size_t evict_settled(near_cache& store, const std::string& rollup, std::int64_t lo,
                          std::int64_t hi) {
  return store.erase_if(
      [&](const std::string& key) { return settled_key_overlaps(key, rollup, lo, hi); });
}

} // namespace joule::cache
