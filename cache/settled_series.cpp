#include "cache/settled_series.hpp"

#include <algorithm>
#include <cstdlib>
#include <functional>

namespace joule::cache {

std::string_view series_part::slice(std::int64_t from, std::int64_t to) const {
  auto by_time = [](const std::pair<std::int64_t, std::size_t>& e, std::int64_t t) {
    return e.first < t;
  };
  auto first = std::lower_bound(elements.begin(), elements.end(), from, by_time);
  auto last = std::lower_bound(first, elements.end(), to, by_time);
  if (first == last)
    return {};
  const std::size_t begin = first->second;
  const std::size_t end = last == elements.end() ? text.size() : last->second - 1;  // its ','
  return std::string_view(text).substr(begin, end - begin);
}

void series_part::append(std::int64_t t, std::string_view element) {
  if (!text.empty())
    text += ',';
  elements.emplace_back(t, text.size());
  text.append(element);
}

bool parse_versions(const std::string& text,
                    std::vector<std::pair<std::int64_t, std::int64_t>>& out) {
  out.clear();
  const char* p = text.c_str();
  const char* end = p + text.size();
  while (p < end) {
    char* stop = nullptr;
    const long long hour = std::strtoll(p, &stop, 10);
    if (stop == p || *stop != ':')
      return false;
    p = stop + 1;
    const long long version = std::strtoll(p, &stop, 10);
    if (stop == p || (*stop != ',' && stop != end))
      return false;
    out.emplace_back(hour, version);
    p = stop == end ? end : stop + 1;
  }
  return true;
}

settled_series::settled_series(std::size_t max_entries, std::size_t max_bytes)
    : max_per_shard_(std::max<std::size_t>(1, max_entries / shard_count)),
      max_bytes_per_shard_(std::max<std::size_t>(1, max_bytes / shard_count)) {}

settled_series::shard& settled_series::shard_of(const std::string& key) {
  return shards_[std::hash<std::string>{}(key) % shard_count];
}
const settled_series::shard& settled_series::shard_of(const std::string& key) const {
  return shards_[std::hash<std::string>{}(key) % shard_count];
}

std::shared_ptr<const series_part> settled_series::find(const std::string& key) const {
  auto& s = shard_of(key);
  std::lock_guard<std::mutex> lock(s.mtx);
  auto it = s.parts.find(key);
  return it == s.parts.end() ? nullptr : it->second;
}

void settled_series::put(const std::string& key, std::shared_ptr<const series_part> part) {
  if (!part)
    return;
  const std::size_t size = key.size() + part->bytes();
  if (size > max_bytes_per_shard_)
    return;
  auto& s = shard_of(key);
  // The part replaced or pushed out is released outside the lock (it may be the last owner
  // of tens of kilobytes).
  std::shared_ptr<const series_part> released, pushed_out;
  std::lock_guard<std::mutex> lock(s.mtx);
  auto it = s.parts.find(key);
  if (it != s.parts.end()) {
    s.bytes -= key.size() + it->second->bytes();
    released = std::move(it->second);
    it->second = std::move(part);
  } else {
    while (!s.parts.empty() &&
           (s.parts.size() >= max_per_shard_ || s.bytes + size > max_bytes_per_shard_)) {
      auto victim = s.parts.begin();
      s.bytes -= victim->first.size() + victim->second->bytes();
      pushed_out = std::move(victim->second);
      s.parts.erase(victim);
    }
    s.parts.emplace(key, std::move(part));
  }
  s.bytes += size;
}

void settled_series::drop(const std::string& key, const std::shared_ptr<const series_part>& part) {
  auto& s = shard_of(key);
  std::shared_ptr<const series_part> released;
  std::lock_guard<std::mutex> lock(s.mtx);
  auto it = s.parts.find(key);
  if (it == s.parts.end() || it->second != part)
    return;
  s.bytes -= key.size() + it->second->bytes();
  released = std::move(it->second);
  s.parts.erase(it);
}

std::size_t settled_series::evict(const std::string& prefix, std::int64_t lo, std::int64_t hi) {
  std::size_t n = 0;
  for (auto& s : shards_) {
    std::vector<std::shared_ptr<const series_part>> released;
    std::lock_guard<std::mutex> lock(s.mtx);
    for (auto it = s.parts.begin(); it != s.parts.end();) {
      const auto& p = *it->second;
      if (it->first.compare(0, prefix.size(), prefix) == 0 && p.lo < hi && lo < p.hi) {
        s.bytes -= it->first.size() + p.bytes();
        released.push_back(std::move(it->second));
        it = s.parts.erase(it);
        ++n;
      } else {
        ++it;
      }
    }
  }
  return n;
}

void settled_series::clear() {
  for (auto& s : shards_) {
    std::unordered_map<std::string, std::shared_ptr<const series_part>> released;
    std::lock_guard<std::mutex> lock(s.mtx);
    released.swap(s.parts);
    s.bytes = 0;
  }
}

std::size_t settled_series::size() const {
  std::size_t n = 0;
  for (auto& s : shards_) {
    std::lock_guard<std::mutex> lock(s.mtx);
    n += s.parts.size();
  }
  return n;
}

} // namespace joule::cache
