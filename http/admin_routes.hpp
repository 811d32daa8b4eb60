#pragma once
// Token administration over REST (scope admin): POST /admin/tokens (the secret is in that
// answer only), GET /admin/tokens (never the secret or its hash), DELETE /admin/tokens/{id}.
// A household-restricted admin manages only tokens inside its households.

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "http/json_parse.hpp"
#include "http/routes.hpp"

namespace joule::http {

void add_admin_routes(route_table& table, std::shared_ptr<const route_env> env);

/// Parses a POST /admin/tokens body; on error names the field (400 codes: invalid_json,
/// unknown_field, invalid_scopes, invalid_households, invalid_expires_in, invalid_name).
struct token_request {
  auth::scope_set scopes = 0;
  std::vector<std::string> households;  // sorted, unique, normalised
  std::optional<std::int64_t> expires_in_us;
  std::string name;
};
std::variant<token_request, api_error> parse_token_request(
    const std::string& body, int max_depth = default_json_max_depth);

} // namespace joule::http
