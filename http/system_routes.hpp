#pragma once
// Operations routes: liveness, readiness (one database round trip), Prometheus metrics and the
// status of every supervised actor.

#include "http/routes.hpp"

namespace joule::http {

/// GET /healthz, /readyz, /metrics, /admin/status.
void add_system_routes(route_table& table, std::shared_ptr<const route_env> env);

} // namespace joule::http
