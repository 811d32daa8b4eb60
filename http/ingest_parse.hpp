#pragma once
// Validation of a POST /telemetry body: pure, all-or-nothing. Reports the first problems by
// index and field so a device author can fix them.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/telemetry_row.hpp"

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
};

/// At most `max_errors` errors are collected.
ingest_parse_result parse_readings(const std::string& body, std::int64_t now,
                                   std::int64_t max_future_skew_us, std::size_t max_errors = 20);

/// `{"error":{"code":"invalid_readings","message":..,"details":[{"index","field","reason"}]}}`
std::string render_reading_errors(const std::vector<reading_error>& errors);

} // namespace joule::http
