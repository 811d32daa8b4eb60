#pragma once
// The alerts feature as the server wires it in: the actors to supervise (the routes are in
// rules/alert_routes.hpp).

#include <memory>
#include <vector>

#include "core/child_spec.hpp"
#include "core/registry.hpp"
#include "config/settings.hpp"
#include "db/live_tail.hpp"

namespace joule::rules {

/// Long-lived actors of the alerts feature (feed, evaluator manager, notifier), to be
/// started by the supervisor after the DB pool.
/// `live`: the live tail whose snapshots feed the evaluators (null: the feed queries itself).
std::vector<child_spec> alert_children(const config::settings& s,
                                       std::shared_ptr<service_registry> registry,
                                       std::shared_ptr<db::live_tail_holder> live = nullptr);

} // namespace joule::rules
