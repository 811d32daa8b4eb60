#include "bench/dashboard_mix.hpp"

#include "common/hash.hpp"

namespace joule::bench {

const std::vector<std::string>& dashboard_endpoint_names() {
  static const std::vector<std::string> names = {"energy_5m_24h", "energy_1h_7d", "top_devices",
                                                 "power_1m_1h"};
  return names;
}

std::string power_target(const std::string& device_id, unix_seconds start, unix_seconds end) {
  return "/analytics/devices/" + device_id + "/power?start=" + format_rfc3339(start) +
         "&end=" + format_rfc3339(end) + "&step=1m";
}

std::string dashboard_target(dashboard_endpoint e, const std::string& id, unix_seconds now) {
  switch (e) {
    case dashboard_endpoint::energy_5m_24h: {
      unix_seconds end = ceil_to(now, 300);
      return "/analytics/households/" + id + "/energy?start=" + format_rfc3339(end - 86400) +
             "&end=" + format_rfc3339(end) + "&step=5m";
    }
    case dashboard_endpoint::energy_1h_7d: {
      unix_seconds end = ceil_to(now, 3600);
      return "/analytics/households/" + id + "/energy?start=" + format_rfc3339(end - 7 * 86400) +
             "&end=" + format_rfc3339(end) + "&step=1h";
    }
    case dashboard_endpoint::top_devices:
      return "/analytics/households/" + id + "/top-devices?limit=5";
    case dashboard_endpoint::power_1m_1h: {
      unix_seconds end = ceil_to(now, 60);
      return power_target(id, end - 3600, end);
    }
  }
  return "/";
}

std::vector<load_request> make_dashboard_mix(const fleet_ids& ids, size_t n, uint64_t seed,
                                             unix_seconds now) {
  std::vector<load_request> out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    uint64_t h = hash_of(seed, 0x6d6978, i);
    auto e = static_cast<dashboard_endpoint>(h % dashboard_endpoint_count);
    uint64_t pick = hash_of(h, 1);
    const std::string& id = e == dashboard_endpoint::power_1m_1h
                                ? ids.device_ids[pick % ids.device_ids.size()]
                                : ids.household_ids[pick % ids.household_ids.size()];
    out.push_back({dashboard_target(e, id, now), static_cast<int>(e), {}});
  }
  return out;
}

} // namespace joule::bench
