#pragma once

#include <string>

#include "common/time_format.hpp"

namespace joule::bench {

/// Makes sure every UTC day in [start, end) has its own partition of `telemetry` before a
/// backfill, so history does not pile up in telemetry_default (which the server would then
/// have to move row by row). Creates `telemetry_pYYYYMMDD` only where no partition covers the
/// day yet; a day that some other partition already covers (e.g. one the server made under
/// its own naming), or whose rows already sit in the default partition, is left alone.
/// Returns a short human-readable note per day that was not created; never throws for those.
std::string ensure_daily_partitions(const std::string& conninfo, unix_seconds start,
                                    unix_seconds end);

} // namespace joule::bench
