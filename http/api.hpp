#pragma once
// The HTTP API: turns routed, validated requests into messages to the actors and their
// answers into responses. Runs on the I/O threads and never blocks them.

#include <memory>

#include "config/settings.hpp"
#include "http/server.hpp"

namespace caf {
class actor_system;
} // namespace caf

namespace joule {
class service_registry;
} // namespace joule

namespace joule::http {

struct api_context {
  caf::actor_system* system = nullptr;
  std::shared_ptr<service_registry> registry;
  config::settings settings;
};

handler_fn make_api_handler(std::shared_ptr<api_context> ctx);

} // namespace joule::http
