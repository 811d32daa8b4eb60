#pragma once
// Settled parts of device answers (issue 9, live reads of device power and top devices): the
// rollup rows of a range below the device 1 min watermark, read by one statement together
// with the versions of the hours they span (rollup_versions), so an answer part is stored
// under the version of exactly the rows it was computed from. The live part comes from the
// live tail's snapshot (db/live_tail.hpp).

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace joule::db {

class session;

/// One power bucket of a settled part: average and maximum, as the database path answers.
struct power_point {
  std::int64_t t = 0;
  std::optional<double> avg;
  std::optional<double> max;
};

struct settled_power_part {
  /// "hour:version,..." of device_1m over the hours the part spans (live_snapshot::version_text).
  std::string versions;
  std::vector<power_point> points;
};

/// The device 1 min rollup rows of `device` in [lo, hi) merged into `step` buckets (lo, hi on
/// its grid, hi at or below the device 1 min watermark), and the versions of their hours.
settled_power_part settled_power(session& s, const std::string& device, std::int64_t step,
                                 std::int64_t lo, std::int64_t hi);

/// A device's energy in one hour of a settled top-devices part.
struct device_hour {
  std::int64_t hour = 0;
  std::string device;
  double energy = 0;
};

struct settled_top_part {
  /// device_1h and device_1m versions over the hours the part spans.
  std::string versions_1h, versions_1m;
  /// Energy per hour and device of `devices`, hours ascending; devices without energy in an
  /// hour are left out.
  std::vector<device_hour> rows;
};

/// Energy per hour and device over the whole hours [lo, hi) (hi at or below the device 1 min
/// watermark): device_1h rows below its watermark, device_1m rows from there on, as the
/// database path's tiers read them.
settled_top_part settled_top(session& s, const std::vector<std::string>& devices,
                             std::int64_t lo, std::int64_t hi);

} // namespace joule::db
