#pragma once
// The /alerts HTTP handlers: validation on the I/O thread (pure, rules/rule.hpp), SQL as
// db_jobs on the pool, and every committed rule change forwarded to the alert manager so it
// takes effect without a restart.

#include "http/api.hpp"

namespace joule::rules {

/// POST/GET /alerts/rules
http::feature_handler rules_handler(const http::api_context& ctx);
/// GET/PUT/DELETE /alerts/rules/{id}
http::feature_handler rule_handler(const http::api_context& ctx);
/// GET /alerts/events?rule_id=&since=&limit=
http::feature_handler events_handler(const http::api_context& ctx);

} // namespace joule::rules
