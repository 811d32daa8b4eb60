#pragma once
// The analytics read queries: real-time aggregation over rollup tiers plus the raw tail.
// Returns typed results; rendering to JSON lives in http/.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace joule::db {

class session;

/// How the answer is computed: rollups + raw tail (normal) or raw rows only (baseline).
enum class read_mode { rollups, raw };

struct series_query {
  std::string id;            // household_id (energy) or device_id (power), a valid UUID
  std::int64_t start = 0;    // buckets with start <= t < end (µs)
  std::int64_t end = 0;
  std::int64_t step = 0;     // µs: 1m, 5m or 1h
};

struct top_query {
  std::string household_id;
  std::int64_t start = 0;    // hour-aligned window
  std::int64_t end = 0;
  int limit = 5;
};

struct point {
  std::int64_t t = 0;
  std::optional<double> v;     // energy_wh_sum (energy) or power_w_avg (power)
  std::optional<double> max;   // power_w_max (power)
};

struct device_energy {
  std::string device_id;
  double energy_wh = 0;
};

/// Common envelope: whether the subject exists, and what the data reflects.
struct answer_meta {
  bool found = false;
  std::int64_t fresh_as_of = 0;  // all writes committed before this are reflected
  bool live = false;             // includes buckets that are still changing
};

struct series_result {
  answer_meta meta;
  std::vector<point> series;
};

struct top_result {
  answer_meta meta;
  std::vector<device_energy> devices;
};

class watermark_board;

/// With `known` watermarks (all those the query needs) an answer takes one round trip;
/// otherwise the watermarks are read first (and `known` is raised with them).
series_result household_energy(session& s, const series_query& q, read_mode mode,
                               watermark_board* known = nullptr);
series_result device_power(session& s, const series_query& q, read_mode mode,
                           watermark_board* known = nullptr);
top_result top_devices(session& s, const top_query& q, read_mode mode,
                       watermark_board* known = nullptr);

} // namespace joule::db
