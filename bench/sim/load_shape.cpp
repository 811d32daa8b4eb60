#include "sim/load_shape.hpp"

#include <array>
#include <cmath>

#include "common/hash.hpp"

namespace joule::bench {

namespace {

constexpr double pi = 3.14159265358979323846;

double bump(double hour, double centre, double width) {
  double d = std::fabs(hour - centre);
  d = std::fmin(d, 24.0 - d); // the day wraps around midnight
  return std::exp(-0.5 * (d / width) * (d / width));
}

// One multiplier per minute of the day, computed once: exp() per reading would dominate
// the backfill's CPU time.
const std::array<float, 1440>& daily_table() {
  static const std::array<float, 1440> table = [] {
    std::array<float, 1440> t{};
    for (size_t m = 0; m < t.size(); ++m) {
      double h = static_cast<double>(m) / 60.0;
      double v = 0.55 + 0.55 * bump(h, 7.5, 1.0) + 0.95 * bump(h, 19.5, 1.8) -
                 0.2 * bump(h, 3.5, 1.5);
      t[m] = static_cast<float>(v);
    }
    return t;
  }();
  return table;
}

int64_t second_of_day(unix_seconds t) {
  int64_t s = t % 86400;
  return s < 0 ? s + 86400 : s;
}

double hour_of_day(unix_seconds t) { return static_cast<double>(second_of_day(t)) / 3600.0; }

// Periodic on/off cycle: true while in the first `duty` fraction of each period.
bool cycle_on(unix_seconds t, int64_t period, double duty, int64_t phase, int64_t* pos = nullptr) {
  int64_t p = (t + phase) % period;
  if (p < 0)
    p += period;
  if (pos)
    *pos = p;
  return static_cast<double>(p) < duty * static_cast<double>(period);
}

struct episode_spec {
  uint64_t salt;
  double per_day_probability;
  double start_hour;    // centre of the start time, local (household-shifted) UTC
  double start_spread_h;
  int64_t min_s, max_s;
};

struct episode_position {
  int64_t pos = -1; // seconds since the episode started, -1 = no episode running
  int64_t length = 0;
};

// At most one episode per device and day; yesterday's may still run past midnight.
episode_position find_episode(const device_model& d, unix_seconds t, const episode_spec& spec) {
  int64_t day = t >= 0 ? t / 86400 : (t - 86399) / 86400;
  for (int64_t dd = day; dd >= day - 1; --dd) {
    uint64_t h = hash_of(d.key, spec.salt, static_cast<uint64_t>(dd));
    if (unit_interval(h) >= spec.per_day_probability)
      continue;
    double start_h = spec.start_hour + (2 * unit_interval(hash_of(h, 1)) - 1) * spec.start_spread_h;
    auto start = dd * 86400 + static_cast<int64_t>(start_h * 3600);
    auto length = spec.min_s + static_cast<int64_t>(unit_interval(hash_of(h, 2)) *
                                                    static_cast<double>(spec.max_s - spec.min_s));
    if (t >= start && t < start + length)
      return {t - start, length};
  }
  return {};
}

double base_load(const device_model& d, unix_seconds t) {
  return 60.0 * d.scale * (0.85 + 0.15 * daily_pattern(second_of_day(t)));
}

double fridge(const device_model& d, unix_seconds t) {
  auto period = 2400 + static_cast<int64_t>(d.key % 1800);
  double duty = 0.35 + 0.15 * unit_interval(hash_of(d.key, 11)) + 0.05 * (daily_pattern(second_of_day(t)) - 1);
  int64_t pos = 0;
  if (!cycle_on(t, period, duty, static_cast<int64_t>(d.key >> 20) % period, &pos))
    return 4.0;
  return 110.0 * d.scale * (pos < 20 ? 2.5 : 1.0); // compressor inrush
}

double washing_machine(const device_model& d, unix_seconds t) {
  auto e = find_episode(d, t, {21, 0.45, 11.0, 8.0, 5400, 7200});
  if (e.pos < 0)
    return 1.0;
  if (e.pos < 1200)
    return 2100.0 * d.scale; // heating the water
  if (e.pos > e.length - 600)
    return 450.0 * d.scale;  // spinning
  return (e.pos / 30) % 2 ? 250.0 * d.scale : 60.0; // drum turning back and forth
}

double dryer(const device_model& d, unix_seconds t) {
  auto e = find_episode(d, t, {22, 0.25, 14.0, 6.0, 3600, 5400});
  if (e.pos < 0)
    return 0.5;
  return cycle_on(e.pos, 300, 0.7, 0) ? 2400.0 * d.scale : 300.0 * d.scale;
}

double oven(const device_model& d, unix_seconds t) {
  auto e = find_episode(d, t, {23, 0.55, 18.0, 1.5, 2400, 4200});
  if (e.pos < 0)
    return 2.0;
  if (e.pos < 600)
    return 2500.0 * d.scale; // preheating
  return cycle_on(e.pos, 120, 0.4, 0) ? 2500.0 * d.scale : 40.0; // thermostat
}

double ev_charger(const device_model& d, unix_seconds t) {
  auto e = find_episode(d, t, {24, 0.35, 20.5, 2.5, 7200, 18000});
  if (e.pos < 0)
    return 2.0;
  double rating = (d.key & 1) ? 7400.0 : 3700.0;
  int64_t left = e.length - e.pos;
  if (left < 900) // the battery tapers off at the end of the charge
    return rating * (0.3 + 0.7 * static_cast<double>(left) / 900.0);
  return rating;
}

double lighting(const device_model& d, unix_seconds t) {
  double h = hour_of_day(t);
  return 10.0 + 150.0 * d.scale * (bump(h, 20.5, 2.2) + 0.4 * bump(h, 7.0, 1.0));
}

double heat_pump(const device_model& d, unix_seconds t) {
  double cold = 0.5 + 0.5 * std::cos(2 * pi * (hour_of_day(t) - 5.0) / 24.0);
  if (!cycle_on(t, 1800, 0.45 + 0.3 * cold, static_cast<int64_t>(d.key % 1800)))
    return 20.0;
  return 800.0 * d.scale * (0.6 + 0.4 * cold);
}

double tv(const device_model& d, unix_seconds t) {
  auto e = find_episode(d, t, {25, 0.8, 20.0, 1.5, 3600, 10800});
  return e.pos < 0 ? 1.0 : 110.0 * d.scale;
}

} // namespace

double daily_pattern(int64_t s) { return daily_table()[static_cast<size_t>(s / 60) % 1440]; }

double power_w(const device_model& d, unix_seconds utc) {
  const unix_seconds t = utc + d.tz_shift_s; // household habits, not the clock, shift
  double w = 0;
  switch (d.kind) {
    case appliance::base_load: w = base_load(d, t); break;
    case appliance::fridge: w = fridge(d, t); break;
    case appliance::washing_machine: w = washing_machine(d, t); break;
    case appliance::dryer: w = dryer(d, t); break;
    case appliance::oven: w = oven(d, t); break;
    case appliance::ev_charger: w = ev_charger(d, t); break;
    case appliance::lighting: w = lighting(d, t); break;
    case appliance::heat_pump: w = heat_pump(d, t); break;
    case appliance::tv: w = tv(d, t); break;
  }
  uint64_t h = hash_of(d.key, static_cast<uint64_t>(utc));
  w *= 0.98 + 0.04 * unit_interval(h);
  if (unit_interval(hash_of(h, 7)) < 0.0005)
    w *= 2.0 + 2.0 * unit_interval(hash_of(h, 8)); // rare spike
  return w > 0 ? w : 0.0;
}

} // namespace joule::bench
