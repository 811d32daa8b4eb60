#pragma once
// Analytics queries and their answers: what the HTTP side asks the DB pool and what comes back
// (domain types only; JSON lives in http/render.cpp).

#include <caf/allowed_unsafe_message_type.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace joule {

/// Which series a series_query asks for.
enum class series_kind : std::uint8_t {
  household_energy,  // energy_wh per bucket of a household
  device_power,      // power_w avg and max per bucket of a device
};

struct series_query {
  series_kind kind = series_kind::household_energy;
  std::string id;            // household_id (energy) or device_id (power), a valid UUID
  std::int64_t start = 0;    // buckets with start <= t < end (µs)
  std::int64_t end = 0;
  std::int64_t step = 0;     // µs: 1m, 5m or 1h
  /// The caller's households (sorted UUIDs; empty: any). A device of another household is
  /// answered like an unknown one (not found), checked in the same query.
  std::vector<std::string> households{};
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

} // namespace joule

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(joule::series_query)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(joule::series_result)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(joule::top_query)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(joule::top_result)
