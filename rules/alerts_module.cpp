#include "rules/alerts_module.hpp"

namespace joule::rules {

std::vector<child_spec> alert_children(const config::settings&, std::shared_ptr<service_registry>) {
  return {};
}

void install_alert_routes(http::api_context&) {}

} // namespace joule::rules
