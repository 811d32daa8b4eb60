#pragma once

#include <string>

#include "bench/dashboard_mix.hpp"
#include "common/time_format.hpp"

namespace joule::bench {

/// `fresh_as_of` of an analytics response, seconds since the epoch; false when missing.
bool read_fresh_as_of(const std::string& body, double& fresh_as_of);

/// The `max` of the power series bucket whose `t` equals `bucket`; false when the body is
/// not a power response or has no such bucket.
bool read_power_bucket_max(const std::string& body, unix_seconds bucket, double& max);

/// Checks the body against the server contract for `e` (ARCHITECTURE.md §5): required
/// fields and their types. Returns an empty string when it conforms, else what is wrong.
std::string check_response_shape(dashboard_endpoint e, const std::string& body);

} // namespace joule::bench
