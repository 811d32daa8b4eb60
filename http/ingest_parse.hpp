#pragma once
// Validation of a POST /telemetry body: pure, all-or-nothing. Reports the first problems by
// index and field so a device author can fix them.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "config/settings.hpp"
#include "core/telemetry_row.hpp"
#include "http/json_parse.hpp"

namespace joule::http {

using reading = telemetry_row;

struct reading_error {
  int index = -1;  // -1: the body as a whole
  std::string field;
  std::string reason;
};

struct ingest_parse_result {
  std::vector<reading> readings;
  std::vector<reading_error> errors;  // non-empty: reject the whole batch with 400
  /// The 400's error code: `invalid_json` for a body nested deeper than the cap,
  /// `invalid_readings` for everything else (including other malformed JSON, as before).
  std::string code = "invalid_readings";
};

/// What a batch is checked against. Every reading must lie in
/// [now - max_age, now + max_future_skew]: far-future rows would sit in the raw tail forever,
/// and one old row makes the rollups re-aggregate everything since it (unbounded work).
struct ingest_limits {
  std::int64_t now = 0;  // µs since the epoch
  std::int64_t max_future_skew_us = 300'000'000;
  std::int64_t max_age_us = 7 * 86'400'000'000LL;
  int json_max_depth = default_json_max_depth;
  std::size_t max_errors = 20;  // at most this many errors are collected
};

/// The limits of `ingest.max_future_skew`, `ingest.max_age` and `http.json_max_depth` at `now`.
ingest_limits ingest_limits_of(const config::settings& s, std::int64_t now);

ingest_parse_result parse_readings(const std::string& body, const ingest_limits& limits);

/// `{"error":{"code":<r.code>,"message":..,"details":[{"index","field","reason"}]}}`
std::string render_reading_errors(const ingest_parse_result& r);

} // namespace joule::http
