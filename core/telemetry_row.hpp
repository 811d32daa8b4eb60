#pragma once
// One raw reading as stored in `telemetry` (no CAF here: plain code uses it too).

#include <cstdint>
#include <string>

namespace joule {

struct telemetry_row {
  std::int64_t ts = 0;        // µs since the epoch
  std::string device_id;      // normalised UUID
  std::string household_id;   // empty: taken from `devices`
  double power_w = 0;
  double energy_wh = 0;
};

} // namespace joule
