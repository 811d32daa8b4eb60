#include <stdexcept>

#include "bench/scenarios.hpp"

namespace joule::bench {

fleet_ids fleet_ids_from_args(const cli_args& a) {
  if (a.has("db"))
    return load_fleet_ids(a.get("db", ""));
  if (a.has("households"))
    return fleet_ids_from_model(a.get_int("households", 1000), a.get_int("devices-min", 3),
                                a.get_int("devices-max", 12),
                                static_cast<uint64_t>(a.get_int("seed", 1)));
  throw std::invalid_argument("need --db (read ids from devices) or --households N [--seed S]");
}

} // namespace joule::bench
