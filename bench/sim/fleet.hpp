#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/uuid.hpp"

namespace joule::bench {

/// What a device is; it decides the device's load shape.
enum class appliance : uint8_t {
  base_load,       // always-on circuits: router, standby, ventilation
  fridge,          // compressor cycling
  washing_machine, // occasional episodes: heating, washing, spinning
  dryer,
  oven,            // evening episodes with thermostat cycling
  ev_charger,      // long evening/night charging sessions
  lighting,        // follows the daily pattern
  heat_pump,       // modulated by time of day, cycling
  tv,              // evening use, standby otherwise
};

const char* appliance_name(appliance a);

struct device_model {
  uuid id;
  uuid household_id;
  std::string name;
  appliance kind = appliance::base_load;
  uint64_t key = 0;    // hash from which every random property of the device is derived
  double scale = 1.0;  // per-device rating factor (0.7 … 1.3)
  int32_t tz_shift_s = 0; // household habit: peaks shifted by up to ±45 min
};

struct household_model {
  uuid id;
  uint32_t first_device = 0; // index into fleet::devices
  uint32_t device_count = 0;
};

struct fleet_params {
  int64_t households = 1000;
  int64_t devices_min = 3;
  int64_t devices_max = 12;
  uint64_t seed = 1;
};

struct fleet {
  std::vector<household_model> households;
  std::vector<device_model> devices;
};

/// Builds the fleet; a pure function of the parameters. Household h's id and devices depend
/// only on (seed, h, devices_min, devices_max), so a larger fleet extends a smaller one.
/// Device counts lean towards devices_min (most homes meter a few circuits): with 3…12 the
/// mean is about 5. Throws std::invalid_argument on inconsistent parameters.
fleet make_fleet(const fleet_params& p);

} // namespace joule::bench
