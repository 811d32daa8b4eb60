#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bench/fleet_ids.hpp"
#include "bench/open_loop_client.hpp"
#include "common/time_format.hpp"

namespace joule::bench {

/// The four dashboard requests, in the order of dashboard_endpoint_names().
enum class dashboard_endpoint : int {
  energy_5m_24h = 0, // GET /analytics/households/{hid}/energy, step 5m, last 24 h
  energy_1h_7d,      // same, step 1h, last 7 d
  top_devices,       // GET /analytics/households/{hid}/top-devices?limit=5
  power_1m_1h,       // GET /analytics/devices/{did}/power, step 1m, last 1 h
};
constexpr int dashboard_endpoint_count = 4;

const std::vector<std::string>& dashboard_endpoint_names();

/// Path and query of one dashboard request for `id` (a household id, or a device id for
/// power). The window ends at `now` rounded up to the step and is formatted RFC 3339, so
/// repeated requests within one step share a cache key.
std::string dashboard_target(dashboard_endpoint e, const std::string& id, unix_seconds now);

/// Explicit-window power query for one device (the freshness probe).
std::string power_target(const std::string& device_id, unix_seconds start, unix_seconds end);

/// `n` requests, endpoints uniform, households/devices uniform over `ids`; deterministic
/// from `seed`. `now` is fixed for the whole list.
std::vector<load_request> make_dashboard_mix(const fleet_ids& ids, size_t n, uint64_t seed,
                                             unix_seconds now);

} // namespace joule::bench
