#pragma once
// The ingest feature's route: POST /telemetry validates the whole batch here and hands it to
// the telemetry writer actor (group commit), answering 202 only after the commit.

#include "http/routes.hpp"

namespace joule::http {

void add_ingest_routes(route_table& table, std::shared_ptr<const route_env> env);

} // namespace joule::http
