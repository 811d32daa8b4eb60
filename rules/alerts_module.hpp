#pragma once
// The alerts feature as the server wires it in: the actors to supervise and the HTTP handlers.

#include <memory>
#include <vector>

#include "core/child_spec.hpp"
#include "core/registry.hpp"
#include "http/api.hpp"

namespace joule::rules {

/// Long-lived actors of the alerts feature (feed, evaluator manager, notifier), to be
/// started by the supervisor after the DB pool.
std::vector<child_spec> alert_children(const config::settings& s,
                                       std::shared_ptr<service_registry> registry);

/// Installs the /alerts/... handlers into the API context.
void install_alert_routes(http::api_context& ctx);

} // namespace joule::rules
