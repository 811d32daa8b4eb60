#pragma once
// The bucket feed's queries: the latest buckets of every subscribed scope id, a few queries
// per cycle however many rules there are (ids batched as `= ANY($1::uuid[])`). Real-time:
// rollup rows below the watermark plus a GROUP BY over the raw tail above it, so a reading
// counts as soon as it is committed.

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "db/live_tail.hpp"
#include "rules/evaluation.hpp"

namespace joule::db {
class session;
} // namespace joule::db

namespace joule::rules {

/// Which ids to read, split by how far back each needs buckets.
struct feed_request {
  std::vector<std::string> device_1m_ids;   // devices with only 1m rules
  std::vector<std::string> device_5m_ids;   // devices with a 5m rule (read as 1m state)
  std::vector<std::string> household_1m_ids;
  std::vector<std::string> household_5m_ids;
  std::int64_t grace_us = 2'000'000;
  /// > 0: read back this far (µs) instead of only the newest buckets (start-up catch-up).
  std::int64_t catch_up_us = 0;
  // silence_sec: whose newest reading to track. `*_new` ids are read in full once (an index
  // probe per id); the others only over the recent raw tail (silence_tail_us).
  std::vector<std::string> silence_device_ids, silence_device_ids_new;
  std::vector<std::string> silence_household_ids, silence_household_ids_new;
};

/// How far back each cycle looks for the newest reading of a tracked scope: this, or down to
/// the device 1m watermark when that is further back (at most silence_max_tail_us).
constexpr std::int64_t silence_tail_us = 2 * 60'000'000;
constexpr std::int64_t silence_max_tail_us = 15 * 60'000'000;
/// How often every tracked scope is looked up in full again (rollup + raw rows): a reading
/// committed so late that it sits below the watermark ends a silence within this.
constexpr std::int64_t silence_full_lookup_us = 60'000'000;

/// Buckets by scope id, each list ascending. `closed` is set relative to db_now - grace.
struct feed_data {
  std::int64_t db_now = 0;
  std::unordered_map<std::string, std::vector<bucket_value>> device_1m;  // 1m state
  std::unordered_map<std::string, std::vector<bucket_value>> household_1m;
  std::unordered_map<std::string, std::vector<bucket_value>> household_5m;
  /// silence_sec: newest reading (µs) by scope id; a `*_new` id without an entry never
  /// reported, other ids are missing when nothing arrived within the tail.
  std::unordered_map<std::string, std::int64_t> last_seen_device, last_seen_household;
  int queries = 0;
};

/// Start of the oldest bucket the feed reads for `width`: the bucket that closed most
/// recently (or is in its grace period) and everything after it.
std::int64_t feed_lookback(std::int64_t now, std::int64_t width, std::int64_t grace);

feed_data read_feed(db::session& s, const feed_request& req);

/// The same buckets taken from a live tail snapshot (which holds every device and household
/// from the feed's look-back on): no query. Requires snap.devices_ok.
feed_data feed_from_snapshot(const db::live_snapshot& snap, const feed_request& req);

/// '{a,b,...}' for `$n::uuid[]` (ids are validated UUIDs).
std::string uuid_array(const std::vector<std::string>& ids);

} // namespace joule::rules
