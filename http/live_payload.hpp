#pragma once
// The text formats of device answers' settled parts (http/live_routes.cpp): what memory and
// Redis hold under a part's versioned key, and the memo a subject's part is carried forward
// in. Stored text may be truncated or corrupt (Redis is shared, evicts, can be written by
// anyone with access), so every decoder is total: malformed text yields nothing, and the
// caller treats it as a miss (reads the part from the database), never as data.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "db/live_parts.hpp"

namespace joule::http {

/// A settled part: [lo, hi), the versions of the rows it was computed from, and its payload.
struct live_part {
  std::int64_t lo = 0, hi = 0;
  std::string versions, payload;
};

/// "lo|hi|versions|payload".
std::string encode_part(const live_part& p);
/// Nothing unless `text` is exactly what encode_part writes for some part with lo <= hi (the
/// payload itself is checked by its own decoder).
std::optional<live_part> decode_part(const std::string& text);

/// Device power payload: "t,avg,max;" per step bucket (empty avg/max: null), exact doubles.
void append_points(std::string& out, const std::vector<db::power_point>& points);
/// Nothing unless the whole payload is well formed.
std::optional<std::vector<db::power_point>> parse_points(const std::string& payload);

/// Top devices payload: energy per hour and device, "hour#device=energy,...;" per hour.
using hourly = std::map<std::int64_t, std::map<std::string, double>>;
std::string encode_hourly(const hourly& h);
/// Nothing unless the whole payload is well formed.
std::optional<hourly> decode_hourly(const std::string& payload);

/// Whether parse_points / decode_hourly would accept `payload` (without building anything: a
/// part found in memory or Redis is checked before it is joined).
bool points_well_formed(const std::string& payload);
bool hourly_well_formed(const std::string& payload);

} // namespace joule::http
