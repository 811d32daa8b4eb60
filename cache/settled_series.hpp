#pragma once
// Settled series parts that grow (issue 9): the rendered elements of one household's settled
// buckets, held per (household, step) and extended in memory as the watermark passes new
// buckets, instead of being read again from PostgreSQL whenever the window slides or the
// watermark moves (which, with a key per window, re-read every household's part every
// 5 minutes: a burst of one query per household that showed as p95 spikes of 0.3–0.7 s).
//
// A part is valid for exactly the rollup rows it was rendered from: it carries the version of
// every hour it spans (rollup_versions), and a reader compares those with its snapshot's
// before using it. Parts are immutable and shared: extending one builds a new part.

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace joule::cache {

/// Rendered series elements over [lo, hi), joined by ','.
struct series_part {
  std::int64_t lo = 0;  // µs, inclusive
  std::int64_t hi = 0;  // µs, exclusive
  /// (UTC hour, version) of the hours in [floor(lo, 1 h), hi) that have a version, ascending.
  std::vector<std::pair<std::int64_t, std::int64_t>> versions;
  std::string text;
  /// (bucket start, offset of its element in `text`), ascending.
  std::vector<std::pair<std::int64_t, std::size_t>> elements;

  /// The text of the elements starting in [from, to) (no leading or trailing comma).
  std::string_view slice(std::int64_t from, std::int64_t to) const;
  /// Appends one rendered element (its text without separators) for bucket `t` > every held one.
  void append(std::int64_t t, std::string_view element);
  std::size_t bytes() const { return text.size() + elements.size() * sizeof(elements[0]); }
};

/// Parses "hour:version,hour:version" (the version text settled_energy reads with its rows).
/// False on malformed text.
bool parse_versions(const std::string& text,
                    std::vector<std::pair<std::int64_t, std::int64_t>>& out);

/// Thread-safe store of parts by key, bounded in entries and bytes (an entry over the bound
/// pushes out an arbitrary other one of its shard: parts are cheap to rebuild).
class settled_series {
public:
  settled_series(std::size_t max_entries, std::size_t max_bytes = std::size_t{256} << 20);

  std::shared_ptr<const series_part> find(const std::string& key) const;
  void put(const std::string& key, std::shared_ptr<const series_part> part);
  /// Drops the part under `key` if it is still `part` (a reader found it stale).
  void drop(const std::string& key, const std::shared_ptr<const series_part>& part);
  /// Drops the parts overlapping [lo, hi) whose key starts with `prefix`; returns how many.
  std::size_t evict(const std::string& prefix, std::int64_t lo, std::int64_t hi);
  void clear();
  std::size_t size() const;

private:
  struct shard {
    mutable std::mutex mtx;
    std::unordered_map<std::string, std::shared_ptr<const series_part>> parts;
    std::size_t bytes = 0;
  };
  static constexpr std::size_t shard_count = 16;
  shard& shard_of(const std::string& key);
  const shard& shard_of(const std::string& key) const;

  std::size_t max_per_shard_;
  std::size_t max_bytes_per_shard_;
  std::array<shard, shard_count> shards_;
};

} // namespace joule::cache
