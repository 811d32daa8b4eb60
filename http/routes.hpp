#pragma once
// The route table: features (analytics, ingest, system in http/; alerts in rules/) register
// their routes here from their own folder; http/ never lists another folder's routes.
// A route handler runs inside the connection's session actor (`self`), talks to other actors
// with typed requests and calls `reply` once.

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>

#include "cache/live_answer_memo.hpp"
#include "cache/near_cache.hpp"
#include "cache/settled_series.hpp"
#include "config/settings.hpp"
#include "core/auth.hpp"
#include "core/registry.hpp"
#include "db/live_tail.hpp"
#include "http/auth.hpp"
#include "http/handler.hpp"
#include "http/router.hpp"
#include "http/server.hpp"

namespace joule::http {

/// A request routed to its handler: the raw request, the path parameter and query, and who
/// sent it (a household-restricted token sees only its households: handlers check `who`).
struct route_request {
  request raw;
  matched params;
  auth::identity who;
};

using route_handler =
    std::function<void(caf::event_based_actor* self, route_request& req, reply_fn reply)>;

/// What every feature's handlers may use: the live actors and the settings.
struct route_env {
  std::shared_ptr<service_registry> registry;
  config::settings settings;  // as at start-up
  /// The settings in effect now (a SIGHUP reload replaces them); may be null in tests.
  std::shared_ptr<const config::settings_box> current;
  /// The cache broker's near cache, read directly by cached routes (null: always ask the
  /// broker).
  std::shared_ptr<cache::near_cache> near;
  /// The live tail's current snapshot (null: no live reads; every answer from the database).
  std::shared_ptr<db::live_tail_holder> live;
  /// Settled answer parts, keyed by the version of the rows they were computed from.
  std::shared_ptr<cache::near_cache> settled;
  /// Settled energy series per household and step, extended as the watermark moves.
  std::shared_ptr<cache::settled_series> series;
  /// Whole live answers per snapshot (null: live.answer_memo_max_bytes = 0 or no live reads).
  std::shared_ptr<cache::live_answer_memo> answers;
};

struct route {
  std::string method;   // GET, POST, PUT, DELETE
  std::string pattern;  // e.g. "/analytics/households/{id}/energy"; {id} matches one segment
  std::string name;     // metrics label (bounded set), e.g. "energy"
  /// What the caller's token must grant (none: open to anyone; admin grants everything).
  /// Defaults to admin so that a route that forgets to say is closed, not open.
  auth::scope scope = auth::scope::admin;
  route_handler handler;
};

class route_table {
public:
  void add(route r);

  struct lookup {
    const route* found = nullptr;  // null: no route for this method and path
    bool path_known = false;       // the path exists with other methods (405)
    matched params;
  };
  lookup match(const std::string& method, const std::string& target) const;

  const std::vector<route>& routes() const { return routes_; }

  /// Authentication for every route whose scope is not `none`. Without a guard (unit tests of
  /// routing) every caller acts as an anonymous admin.
  void set_guard(std::shared_ptr<auth_guard> guard) { guard_ = std::move(guard); }
  const std::shared_ptr<auth_guard>& guard() const { return guard_; }

private:
  struct compiled {
    std::vector<std::string> parts;  // "{id}" is the wildcard
  };
  std::vector<route> routes_;
  std::vector<compiled> compiled_;
  std::shared_ptr<auth_guard> guard_;
};

/// Runs `table` for every request: authentication (401/429 before anything else except on
/// open routes), routing (404/405), the route's scope (403), per-route latency metrics, and a
/// handler that throws answers 500 for that request only.
void dispatch(const route_table& table, caf::event_based_actor* self, request&& req,
              reply_fn reply);

/// For server_config::expect_check: refuses a request head whose body the client holds back
/// (Expect: 100-continue) when `dispatch` would refuse it before reading the body: missing
/// or malformed credentials (401/429, before routing as in dispatch), or, where nobody must
/// authenticate, no such route (404/405). Anything that needs a lookup continues.
std::optional<response> check_head(const route_table& table, const request& head);

/// The server's handler for `table`: each request is dispatched inside its connection's
/// session actor (no actor per request).
handler_fn serve(std::shared_ptr<const route_table> table);

} // namespace joule::http
