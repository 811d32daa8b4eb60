#pragma once

#include <cstdint>

#include "common/time_format.hpp"
#include "sim/fleet.hpp"

namespace joule::bench {

/// Instantaneous power of `device` at time `t`, in watts (≥ 0).
///
/// A pure function of (device, t): appliance cycles and episodes are derived from hashes of
/// the device key and the day, not from state carried between readings, so a backfill can
/// split time across threads and `live` can start anywhere and still agree with it.
/// Shapes: base load scaled by a UTC daily pattern (morning and evening peaks, shifted per
/// household), fridge compressor on/off with inrush, washing machine / dryer / oven / EV
/// charger / TV episodes, lighting and heat pump following the time of day, ±2 % noise and
/// rare 2–4× spikes.
double power_w(const device_model& device, unix_seconds t);

/// Energy consumed over one reading interval at constant `power_w`: W × s / 3600 (≥ 0).
inline double energy_wh(double power_w, int64_t interval_s) {
  double e = power_w * static_cast<double>(interval_s) / 3600.0;
  return e > 0 ? e : 0.0;
}

/// The shared daily load multiplier (≈ 0.35 at night … ≈ 1.5 at the evening peak) at
/// second-of-day `s` (0 … 86399), UTC. Exposed for tests.
double daily_pattern(int64_t second_of_day);

} // namespace joule::bench
