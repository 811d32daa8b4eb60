#include <gtest/gtest.h>

#include <set>

#include "common/time_format.hpp"
#include "sim/fleet.hpp"
#include "sim/load_shape.hpp"

using namespace joule::bench;

namespace {

const unix_seconds day_start = 1'795'737'600; // 2026-11-27T00:00:00Z

TEST(LoadShape, IsAPureFunctionOfDeviceAndTime) {
  const auto a = make_fleet({20, 3, 12, 42});
  const auto b = make_fleet({20, 3, 12, 42});
  ASSERT_EQ(a.devices.size(), b.devices.size());
  for (size_t i = 0; i < a.devices.size(); ++i)
    for (unix_seconds t = day_start; t < day_start + 86400; t += 610)
      ASSERT_EQ(power_w(a.devices[i], t), power_w(b.devices[i], t));
  // Order of evaluation does not matter (no hidden state).
  const auto& d = a.devices[1];
  const double later = power_w(d, day_start + 5000);
  (void)power_w(d, day_start + 10);
  EXPECT_EQ(power_w(d, day_start + 5000), later);
}

TEST(LoadShape, PowerIsNonNegativeAndPlausible) {
  const auto f = make_fleet({50, 3, 12, 7});
  for (const auto& d : f.devices)
    for (unix_seconds t = day_start; t < day_start + 2 * 86400; t += 370) {
      const double p = power_w(d, t);
      ASSERT_GE(p, 0.0);
      ASSERT_LT(p, 40'000.0) << appliance_name(d.kind); // an EV charger with a 4x spike at most
    }
}

TEST(LoadShape, EnergyIsPowerTimesInterval) {
  EXPECT_DOUBLE_EQ(energy_wh(3600.0, 10), 10.0);
  EXPECT_DOUBLE_EQ(energy_wh(0.0, 10), 0.0);
  EXPECT_DOUBLE_EQ(energy_wh(-5.0, 10), 0.0);
}

TEST(LoadShape, DailyPatternPeaksInTheEveningAndMorning) {
  const double night = daily_pattern(3 * 3600 + 1800);
  const double morning = daily_pattern(7 * 3600 + 1800);
  const double midday = daily_pattern(13 * 3600);
  const double evening = daily_pattern(19 * 3600 + 1800);
  EXPECT_GT(evening, midday);
  EXPECT_GT(morning, midday);
  EXPECT_GT(midday, night);
  EXPECT_GT(evening, morning);
}

TEST(LoadShape, FridgeCyclesOnAndOff) {
  const auto f = make_fleet({5, 3, 3, 3});
  const device_model* fridge = nullptr;
  for (const auto& d : f.devices)
    if (d.kind == appliance::fridge)
      fridge = &d;
  ASSERT_NE(fridge, nullptr);
  int on = 0, off = 0;
  for (unix_seconds t = day_start; t < day_start + 6 * 3600; t += 10)
    (power_w(*fridge, t) > 50 ? on : off)++;
  EXPECT_GT(on, 300);
  EXPECT_GT(off, 300);
}

TEST(LoadShape, EpisodicAppliancesRunSometimesNotAlways) {
  const auto f = make_fleet({300, 3, 12, 11});
  int active_devices = 0, ev_devices = 0;
  for (const auto& d : f.devices) {
    if (d.kind != appliance::ev_charger)
      continue;
    ++ev_devices;
    int charging = 0;
    for (unix_seconds t = day_start; t < day_start + 7 * 86400; t += 600)
      charging += power_w(d, t) > 1000;
    EXPECT_LT(charging, 7 * 144 / 2) << "an EV charger should not charge most of the week";
    active_devices += charging > 0;
  }
  ASSERT_GT(ev_devices, 5);
  EXPECT_GT(active_devices, ev_devices / 2);
}

} // namespace
