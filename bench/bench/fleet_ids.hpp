#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/uuid.hpp"

namespace joule::bench {

/// The device and household ids the benchmark picks from.
struct fleet_ids {
  std::vector<std::string> device_ids;
  std::vector<std::string> device_households; // household of device_ids[i]
  std::vector<std::string> household_ids;     // distinct, sorted
};

/// The household the freshness probe writes to; kept out of the dashboard mix so its marker
/// readings never skew the numbers other scenarios read.
uuid probe_household_id();
uuid probe_device_id();

/// Reads `SELECT id, household_id FROM devices` (without the probe household).
/// Throws pqxx exceptions on failure and std::runtime_error when there are no devices.
fleet_ids load_fleet_ids(const std::string& conninfo);

/// The same ids from the simulator's model (for runs without a database, e.g. tests).
fleet_ids fleet_ids_from_model(int64_t households, int64_t devices_min, int64_t devices_max,
                               uint64_t seed);

} // namespace joule::bench
