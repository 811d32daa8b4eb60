#pragma once
// The shared bucket feed: once per interval, one DB job reads the latest buckets of every
// subscribed scope id (a handful of batched queries, rules_sql/feed_sql.cpp) and each
// evaluator gets the buckets of its own scope id and window. 10,000 rules cost the same
// number of queries as one. A cycle still running when the next tick comes is not doubled.

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <set>
#include <unordered_map>
#include <vector>

#include "db/live_tail.hpp"
#include "rules/alert_interfaces.hpp"
#include "rules/feed_sql.hpp"

namespace joule::rules {

struct bucket_feed_config {
  std::chrono::milliseconds interval{1000};
  /// A bucket counts as closed once it ended this long ago (late rows of the same commit
  /// burst still land in it).
  std::int64_t grace_us = 2'000'000;
  std::chrono::milliseconds job_timeout{5000};
  /// The live tail (one feed, two consumers): when set, each cycle takes the buckets from
  /// its newest snapshot instead of querying; the feed queries itself only while the tail
  /// has no usable snapshot (not started, watermark far behind, database unreachable).
  std::shared_ptr<db::live_tail_holder> live;
  /// With `live`: how often the feed looks for a new snapshot (an atomic load and a compare).
  /// A snapshot is distributed within this of being published.
  std::chrono::milliseconds live_poll{25};
};

struct bucket_feed_state {
  static inline const char* name = "bucket_feed";
  bucket_feed_config cfg;
  std::function<db_pool_actor()> pool;
  std::unordered_map<std::string, feed_subscription> subs;  // by rule id
  /// Derived from `subs` (rebuilt when `dirty`): the ids each cycle reads, and which
  /// subscriptions each scope id feeds, so a cycle visits only the scopes that have buckets.
  bool dirty = true;
  std::size_t silence_count = 0;  // silence_sec subscriptions (kept without the index)
  /// Subscription changes since the heap was last trimmed, and when the latest came.
  std::uint64_t churn = 0;
  std::chrono::steady_clock::time_point last_change{};
  feed_request request;
  std::set<std::string> silent_device, silent_household;
  std::unordered_map<std::string, std::vector<const feed_subscription*>> index_device,
      index_household_1m, index_household_5m;
  std::vector<const feed_subscription*> every_cycle;   // no_data policies: a batch each cycle
  std::vector<const feed_subscription*> silence_subs;  // silence_sec rules
  /// Fingerprint of the buckets last sent per scope id ({1m, 5m}): unchanged scopes are not
  /// sent again. Cleared with the index.
  std::unordered_map<std::string, std::array<std::uint64_t, 2>> sent_device, sent_household_1m,
      sent_household_5m;
  std::chrono::steady_clock::time_point next_db_cycle{};
  /// silence_sec: when every tracked scope is next looked up in full (late readings).
  std::chrono::steady_clock::time_point next_full_lookup{};
  /// silence_sec: newest reading by scope id (nullopt: never reported); an id is present once
  /// its full lookup ran.
  std::unordered_map<std::string, std::optional<std::int64_t>> seen_device, seen_household;
  bool running = false;
  std::int64_t catch_up_us = 0;  // > 0: the next cycle reads back this far (once)
  std::uint64_t cycles = 0;
  std::uint64_t failures = 0;
  double last_duration_ms = 0;
  std::int64_t last_db_now = 0;
  std::uint64_t last_batches_sent = 0;
  std::uint64_t last_snapshot = 0;  // seq of the live snapshot distributed last
  std::uint64_t from_snapshot = 0;  // cycles served by the live tail
};

bucket_feed_actor::behavior_type
bucket_feed(bucket_feed_actor::stateful_pointer<bucket_feed_state> self, bucket_feed_config cfg,
            std::function<db_pool_actor()> pool);

} // namespace joule::rules
