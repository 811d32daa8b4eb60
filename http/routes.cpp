#include "http/routes.hpp"

#include <chrono>

#include "core/log.hpp"
#include "core/metrics.hpp"
#include "http/errors.hpp"

namespace joule::http {

void route_table::add(route r) {
  compiled c;
  c.parts = parse_target(r.pattern).segments;
  routes_.push_back(std::move(r));
  compiled_.push_back(std::move(c));
}

route_table::lookup route_table::match(const std::string& method,
                                       const std::string& target) const {
  lookup out;
  auto t = parse_target(target);
  for (std::size_t i = 0; i < routes_.size(); ++i) {
    auto& parts = compiled_[i].parts;
    if (parts.size() != t.segments.size())
      continue;
    std::string id;
    bool ok = true;
    for (std::size_t k = 0; k < parts.size() && ok; ++k) {
      if (parts[k] == "{id}")
        id = t.segments[k];
      else
        ok = parts[k] == t.segments[k];
    }
    if (!ok)
      continue;
    out.path_known = true;
    if (routes_[i].method != method)
      continue;
    out.found = &routes_[i];
    out.params.id = std::move(id);
    out.params.query = std::move(t.query);
    out.params.bad_query = std::move(t.bad_query);
    return out;
  }
  return out;
}

namespace {

metrics::histogram& latency(const std::string& route, int status) {
  return metrics::global().get_histogram(
      "joule_http_request_duration_seconds", "HTTP request latency by route and status",
      metrics::label("route", route) + "," + metrics::label("status", std::to_string(status)));
}

} // namespace

void dispatch(const route_table& table, caf::event_based_actor* self, request&& req,
              reply_fn reply) {
  auto started = std::chrono::steady_clock::now();
  auto m = table.match(req.method, req.target);
  std::string name = m.found ? m.found->name : m.path_known ? "method_not_allowed" : "not_found";
  auto answered = std::make_shared<bool>(false);
  reply_fn done = [reply = std::move(reply), started, name, answered](response r) {
    if (*answered)
      return;
    *answered = true;
    auto secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    latency(name, r.status).observe(secs);
    reply(std::move(r));
  };
  // Runs once the caller is known: 404/405, then the route's scope, then the handler.
  auto route_for = [self, done, name, found = m.found, path_known = m.path_known,
                    params = std::move(m.params)](request&& req, auth::identity who) mutable {
    if (!found) {
      if (path_known)
        return done(error_response(405, "method_not_allowed",
                                   req.method + " is not allowed on this path"));
      return done(error_response(404, "not_found", "no such endpoint"));
    }
    if (!auth::grants(who.scopes, found->scope))
      return done(forbidden_response(found->scope));
    route_request rr{std::move(req), std::move(params), std::move(who)};
    try {
      found->handler(self, rr, done);
    } catch (const std::exception& e) {
      log(log_level::error, "http", "handler for " + name + " threw: " + e.what());
      done(error_response(500, "internal", "internal error"));
    }
  };
  auto& guard = table.guard();
  if (!guard || (m.found && m.found->scope == auth::scope::none))
    return route_for(std::move(req), guard ? auth::identity{} : auth::identity::anonymous_admin());
  // Only what authentication needs is copied; the request itself moves to the route.
  auto held = std::make_shared<request>(std::move(req));
  guard->authenticate(
      self, *held,
      [held, route_for](auth::identity who) mutable {
        route_for(std::move(*held), std::move(who));
      },
      done);
}

} // namespace joule::http

namespace joule::http {
namespace {

// A named function with arguments: CAF 0.17 mishandles argument-less function actors.
void request_actor(caf::event_based_actor* self, std::shared_ptr<const route_table> table,
                   request req, respond_fn respond) {
  dispatch(*table, self, std::move(req), [self, respond](response r) {
    respond(std::move(r));
    self->quit();
  });
}

} // namespace

handler_fn serve(caf::actor_system& sys, std::shared_ptr<const route_table> table) {
  return [&sys, table](request&& req, respond_fn respond) {
    sys.spawn(request_actor, table, std::move(req), std::move(respond));
  };
}

} // namespace joule::http
