#include "sim/fleet.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "common/hash.hpp"

namespace joule::bench {

namespace {

// Domain separators for the hashes, so "household 3" and "device 3" never collide.
enum : uint64_t { tag_household = 0x48, tag_count = 0x4e, tag_device = 0x44, tag_kind = 0x4b };

appliance pick_kind(uint64_t h, uint32_t index) {
  // Every home has an always-on circuit and a fridge; the rest is a weighted draw.
  if (index == 0)
    return appliance::base_load;
  if (index == 1)
    return appliance::fridge;
  static const appliance table[] = {
      appliance::washing_machine, appliance::washing_machine, appliance::dryer,
      appliance::oven,            appliance::oven,            appliance::ev_charger,
      appliance::lighting,        appliance::lighting,        appliance::lighting,
      appliance::heat_pump,       appliance::tv,              appliance::tv,
      appliance::fridge,
  };
  return table[h % (sizeof table / sizeof table[0])];
}

} // namespace

const char* appliance_name(appliance a) {
  switch (a) {
    case appliance::base_load: return "base load";
    case appliance::fridge: return "fridge";
    case appliance::washing_machine: return "washing machine";
    case appliance::dryer: return "dryer";
    case appliance::oven: return "oven";
    case appliance::ev_charger: return "ev charger";
    case appliance::lighting: return "lighting";
    case appliance::heat_pump: return "heat pump";
    case appliance::tv: return "tv";
  }
  return "device";
}

fleet make_fleet(const fleet_params& p) {
  if (p.households < 0 || p.devices_min < 1 || p.devices_max < p.devices_min ||
      p.devices_max > 1000)
    throw std::invalid_argument("need households >= 0 and 1 <= devices-min <= devices-max <= 1000");
  fleet f;
  f.households.reserve(static_cast<size_t>(p.households));
  f.devices.reserve(static_cast<size_t>(p.households * (p.devices_min + p.devices_max) / 2));
  const auto span = static_cast<double>(p.devices_max - p.devices_min + 1);
  for (int64_t h = 0; h < p.households; ++h) {
    const auto hu = static_cast<uint64_t>(h);
    household_model home;
    home.id = uuid::from_hashes(hash_of(p.seed, tag_household, hu, 1),
                                hash_of(p.seed, tag_household, hu, 2));
    // u³ skews the count towards the minimum: mean ≈ min + span/4.
    double u = unit_interval(hash_of(p.seed, tag_count, hu));
    auto extra = static_cast<int64_t>(std::floor(span * u * u * u));
    home.device_count = static_cast<uint32_t>(p.devices_min + std::min<int64_t>(extra, p.devices_max - p.devices_min));
    home.first_device = static_cast<uint32_t>(f.devices.size());
    const auto shift = static_cast<int32_t>(hash_of(p.seed, tag_household, hu, 3) % 5401) - 2700;
    for (uint32_t d = 0; d < home.device_count; ++d) {
      device_model dev;
      dev.key = hash_of(p.seed, tag_device, hu, d);
      dev.id = uuid::from_hashes(hash_of(dev.key, 1), hash_of(dev.key, 2));
      dev.household_id = home.id;
      dev.kind = pick_kind(hash_of(p.seed, tag_kind, hu, d), d);
      dev.name = std::string(appliance_name(dev.kind)) + " " + std::to_string(d + 1);
      dev.scale = 0.7 + 0.6 * unit_interval(hash_of(dev.key, 3));
      dev.tz_shift_s = shift;
      f.devices.push_back(std::move(dev));
    }
    f.households.push_back(home);
  }
  return f;
}

} // namespace joule::bench
