#pragma once
// Timestamps as integer microseconds since the Unix epoch (UTC), and their RFC 3339 form.

#include <cstdint>
#include <optional>
#include <string>

namespace joule {

using micros_t = std::int64_t;
constexpr micros_t micros_per_second = 1'000'000;

/// Parses RFC 3339 (`2026-11-27T12:00:00Z`, fractional seconds and `+01:00` offsets allowed).
std::optional<micros_t> parse_rfc3339(const std::string& text);

/// Formats as UTC RFC 3339 with a `Z`; fractional digits only when not whole seconds.
std::string format_rfc3339(micros_t t);

/// Wall clock now.
micros_t now_micros();

/// Bucket arithmetic on the epoch origin (UTC-aligned for every width dividing a day).
inline micros_t floor_to(micros_t t, micros_t width) {
  micros_t r = t % width;
  return r < 0 ? t - r - width : t - r;
}
inline micros_t ceil_to(micros_t t, micros_t width) {
  micros_t f = floor_to(t, width);
  return f == t ? t : f + width;
}

} // namespace joule
