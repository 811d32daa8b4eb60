#pragma once

#include <cstdint>
#include <string>

#include "sim/fleet.hpp"

namespace joule::bench {

/// Registers every device of the fleet in `devices` (INSERT … ON CONFLICT (id) DO NOTHING),
/// in one parameterised statement per 5,000 devices. Returns how many rows were new.
/// Throws pqxx exceptions on failure.
uint64_t register_devices(const std::string& conninfo, const fleet& f);

} // namespace joule::bench
