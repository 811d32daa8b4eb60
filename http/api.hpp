#pragma once
// The HTTP API: turns routed, validated requests into messages to the actors and their
// answers into responses. Runs on the I/O threads and never blocks them.

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "config/settings.hpp"
#include "http/server.hpp"

namespace caf {
class actor_system;
} // namespace caf

namespace joule {
class service_registry;
} // namespace joule

namespace joule::db {
class watermark_board;
} // namespace joule::db

namespace joule::http {

/// A routed request handed to a feature outside http/ (alerts, ingest).
struct routed_request {
  std::string method;
  std::string id;                            // path parameter, if any
  std::map<std::string, std::string> query;  // decoded
  std::string bad_query;                     // non-empty: malformed query string
  std::string body;
  std::string content_type;
};
using feature_handler = std::function<void(routed_request&&, respond_fn)>;

struct api_context {
  caf::actor_system* system = nullptr;
  /// Watermarks known to this process (lets an answer take one round trip).
  std::shared_ptr<db::watermark_board> watermarks;
  std::shared_ptr<service_registry> registry;
  config::settings settings;
  /// /alerts/rules, /alerts/rules/{id}, /alerts/events (501 while unset).
  feature_handler alert_rules, alert_rule, alert_events;
  /// POST /telemetry (501 while unset).
  feature_handler telemetry;
};

handler_fn make_api_handler(std::shared_ptr<api_context> ctx);

} // namespace joule::http
