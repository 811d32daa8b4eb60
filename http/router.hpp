#pragma once
// Request routing and parameter validation for the HTTP API: pure functions from a method and
// target to a typed request or a 4xx error naming the problem. No I/O.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "db/analytics.hpp"

namespace joule::http {

/// A request target taken apart: decoded path segments and query parameters.
struct parsed_target {
  std::vector<std::string> segments;           // decoded, empty segments dropped
  std::map<std::string, std::string> query;    // decoded
  std::string bad_query;                       // non-empty: malformed query string
};

/// Splits and percent-decodes a target ("/a/b?x=1"). Never fails: a malformed query is
/// reported in bad_query for the route to answer 400.
parsed_target parse_target(const std::string& target);

/// What a route gets from the path and query.
struct matched {
  std::string id;                              // the {id} path parameter, raw
  std::map<std::string, std::string> query;    // decoded
  std::string bad_query;                       // non-empty: malformed query string
};

struct api_error {
  int status = 400;
  std::string code;
  std::string message;
};

struct limits {
  int max_points = 20000;
  int top_limit_max = 100;
};

/// Validates a UUID (8-4-4-4-12 hex) and returns it lower-cased.
std::optional<std::string> normalize_uuid(const std::string& text);

/// Step names to µs: "1m", "5m", "1h".
std::optional<std::int64_t> parse_step(const std::string& text);

using series_request = std::variant<db::series_query, api_error>;
using top_request = std::variant<db::top_query, api_error>;

/// GET /analytics/households/{id}/energy?start=&end=&step=5m|1h (default: the last 24 h).
series_request parse_energy(const matched& m, std::int64_t now, const limits& lim);
/// GET /analytics/devices/{id}/power?start=&end=&step=1m|5m|1h (default: the last hour).
series_request parse_power(const matched& m, std::int64_t now, const limits& lim);
/// GET /analytics/households/{id}/top-devices?limit=5 over the 24 hourly buckets up to now.
top_request parse_top(const matched& m, std::int64_t now, const limits& lim);

/// Percent-decoding ('+' is a space in query strings); nullopt on a malformed escape.
std::optional<std::string> url_decode(const std::string& s, bool plus_is_space);

} // namespace joule::http
