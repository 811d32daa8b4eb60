#pragma once

#include <cstddef>
#include <string>

#include "common/time_format.hpp"
#include "common/uuid.hpp"

namespace joule::bench {

/// One reading as POST /telemetry carries it.
struct reading {
  unix_seconds ts = 0;
  const uuid* device_id = nullptr;
  const uuid* household_id = nullptr;
  double power_w = 0;
  double energy_wh = 0;
};

/// Appends the request body `{"readings":[{"ts","device_id","household_id","power_w",
/// "energy_wh"},...]}` for `n` readings to `out`. Hand-written rather than through a JSON
/// DOM: the ingest benchmark builds hundreds of these 1,000-reading bodies per second.
void append_telemetry_body(std::string& out, const reading* readings, size_t n);

/// The "accepted" count from a `{"accepted": n}` reply, or -1 when absent/unparsable.
long long parse_accepted(const std::string& body);

} // namespace joule::bench
