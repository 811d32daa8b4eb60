#include <stdexcept>

#include "bench/scenarios.hpp"

namespace joule::bench {

namespace {

// --hot-households N: only the first N households (and their devices) are in the mix, the
// way a dashboard fleet where N homes are being watched reuses cache keys.
fleet_ids restrict_to_hot(fleet_ids ids, int64_t hot) {
  if (hot <= 0 || static_cast<size_t>(hot) >= ids.household_ids.size())
    return ids;
  ids.household_ids.resize(static_cast<size_t>(hot));
  fleet_ids out;
  out.household_ids = ids.household_ids;
  for (size_t i = 0; i < ids.device_ids.size(); ++i)
    for (auto& h : out.household_ids)
      if (ids.device_households[i] == h) {
        out.device_ids.push_back(ids.device_ids[i]);
        out.device_households.push_back(ids.device_households[i]);
        break;
      }
  return out;
}

fleet_ids all_fleet_ids(const cli_args& a) {
  if (a.has("db"))
    return load_fleet_ids(a.get("db", ""));
  if (a.has("households"))
    return fleet_ids_from_model(a.get_int("households", 1000), a.get_int("devices-min", 3),
                                a.get_int("devices-max", 12),
                                static_cast<uint64_t>(a.get_int("seed", 1)));
  throw std::invalid_argument("need --db (read ids from devices) or --households N [--seed S]");
}

} // namespace

fleet_ids fleet_ids_from_args(const cli_args& a) {
  return restrict_to_hot(all_fleet_ids(a), a.get_int("hot-households", 0));
}

} // namespace joule::bench
