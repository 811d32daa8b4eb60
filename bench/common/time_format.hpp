#pragma once

#include <cstdint>
#include <string>

namespace joule::bench {

/// Wall-clock time as whole seconds since the Unix epoch (UTC); the simulator and the
/// benchmark never need sub-second timestamps in URLs or readings.
using unix_seconds = int64_t;

/// "2026-11-27T12:00:00Z".
std::string format_rfc3339(unix_seconds t);
/// Writes exactly 20 characters (no terminator) into `out`; for hot loops.
void format_rfc3339(unix_seconds t, char* out);

/// Parses "YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)" into seconds since the epoch (fraction kept).
/// Returns false when the text is not RFC 3339.
bool parse_rfc3339(const std::string& text, double& seconds_since_epoch);

/// Current wall-clock time in (fractional) seconds since the epoch.
double now_seconds();

/// Rounds down / up to a multiple of `step` seconds (UTC, origin the epoch).
inline unix_seconds floor_to(unix_seconds t, int64_t step) {
  int64_t r = t % step;
  return r < 0 ? t - r - step : t - r;
}
inline unix_seconds ceil_to(unix_seconds t, int64_t step) {
  unix_seconds f = floor_to(t, step);
  return f == t ? t : f + step;
}

} // namespace joule::bench
