#pragma once
// The analytics feature's routes: household energy, top devices, device power. Answers go
// through the cache broker (key = the normalised query); a miss is computed by the DB pool as
// a typed query and rendered here.

#include "http/routes.hpp"

namespace joule::http {

/// GET /analytics/households/{id}/energy, /analytics/households/{id}/top-devices,
/// /analytics/devices/{id}/power.
void add_analytics_routes(route_table& table, std::shared_ptr<const route_env> env);

} // namespace joule::http
