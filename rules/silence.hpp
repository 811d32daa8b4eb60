#pragma once
// Silences: while one matches an alert, its notifications are kept as history and sent
// nowhere. Pure model, parsing and rendering; SQL in rules/silence_sql.*.

#include <cstdint>
#include <map>
#include <string>
#include <variant>
#include <vector>

#include "rules/rule.hpp"

namespace joule::rules {

struct alert_silence {
  std::string id;
  /// Exact matches: rule_id, scope_id, household_id (UUIDs) and rule label names.
  std::map<std::string, std::string> matchers;
  std::int64_t starts_at = 0;  // µs
  std::int64_t ends_at = 0;
  std::string comment;
  std::int64_t created_at = 0;
};

/// Validates a POST body. `now` (µs) is the default starts_at; ends_at must lie after both.
std::variant<alert_silence, rule_error> parse_silence(const std::string& body, std::int64_t now,
                                                       int json_max_depth);

std::string render_silence(const alert_silence& s);
std::string render_silences(const std::vector<alert_silence>& ss);
/// The matchers as a JSON object (stored as jsonb, matched by containment).
std::string matchers_json(const std::map<std::string, std::string>& m);

} // namespace joule::rules
