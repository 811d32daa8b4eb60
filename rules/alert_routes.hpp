#pragma once
// The alerts feature's routes: validation in the session actor (pure, rules/rule.hpp), SQL as
// jobs on the DB pool returning rules and events, and every committed rule change forwarded
// to the alert manager so it takes effect without a restart.

#include "http/routes.hpp"

namespace joule::rules {

/// POST/GET /alerts/rules, GET/PUT/DELETE /alerts/rules/{id}, GET /alerts/events.
void add_alert_routes(http::route_table& table, std::shared_ptr<const http::route_env> env);

} // namespace joule::rules
