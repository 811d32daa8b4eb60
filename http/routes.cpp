#include "http/routes.hpp"

#include <chrono>
#include <unordered_map>

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

// Per request: the registry's lookup builds label text and takes its mutex, so each thread
// keeps the handles it has used (histograms live as long as the registry; route names and
// statuses are bounded sets).
metrics::histogram& latency(const std::string& route, int status) {
  thread_local std::unordered_map<std::string, metrics::histogram*> known;
  auto key = route;
  key += ':';
  key += std::to_string(status);
  auto it = known.find(key);
  if (it != known.end())
    return *it->second;
  auto& h = metrics::global().get_histogram(
      "joule_http_request_duration_seconds", "HTTP request latency by route and status",
      metrics::label("route", route) + "," + metrics::label("status", std::to_string(status)));
  known.emplace(std::move(key), &h);
  return h;
}

} // namespace

namespace {

// A request between routing and its handler (authentication may answer asynchronously).
struct routed {
  request req;
  const route* found = nullptr;
  bool path_known = false;
  matched params;
  std::string name;
  reply_fn done;
  /// The caller's token id once known, for the access line.
  std::shared_ptr<std::string> token_id = std::make_shared<std::string>();
};

// Runs once the caller is known: 404/405, then the route's scope, then the handler.
void run_route(caf::event_based_actor* self, routed& r, auth::identity who) {
  if (!r.found) {
    if (r.path_known)
      return r.done(error_response(405, "method_not_allowed",
                                   r.req.method + " is not allowed on this path"));
    return r.done(error_response(404, "not_found", "no such endpoint"));
  }
  *r.token_id = who.token_id;
  if (!auth::grants(who.scopes, r.found->scope))
    return r.done(forbidden_response(r.found->scope));
  route_request rr{std::move(r.req), std::move(r.params), std::move(who)};
  try {
    r.found->handler(self, rr, r.done);
  } catch (const std::exception& e) {
    log(log_level::error, "http", "handler for " + r.name + " threw: " + e.what());
    r.done(error_response(500, "internal", "internal error"));
  }
}

} // namespace

void dispatch(const route_table& table, caf::event_based_actor* self, request&& req,
              reply_fn reply) {
  auto started = std::chrono::steady_clock::now();
  auto m = table.match(req.method, req.target);
  auto r = std::make_shared<routed>();
  r->name = m.found ? m.found->name : m.path_known ? "method_not_allowed" : "not_found";
  r->found = m.found;
  r->path_known = m.path_known;
  r->params = std::move(m.params);
  auto answered = std::make_shared<bool>(false);
  r->done = [reply = std::move(reply), started, name = r->name, answered,
             token_id = r->token_id](response resp) {
    if (*answered)
      return;
    *answered = true;
    resp.route = name;
    resp.token_id = *token_id;
    auto secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    latency(name, resp.status).observe(secs);
    reply(std::move(resp));
  };
  r->req = std::move(req);
  auto& guard = table.guard();
  if (!guard || (r->found && r->found->scope == auth::scope::none))
    return run_route(self, *r,
                     guard ? auth::identity{} : auth::identity::anonymous_admin());
  guard->authenticate(
      self, r->req, [self, r](auth::identity who) { run_route(self, *r, std::move(who)); },
      r->done);
}

std::optional<response> check_head(const route_table& table, const request& head) {
  auto m = table.match(head.method, head.target);
  auto& guard = table.guard();
  bool open = !guard || !guard->settings().required ||
              (m.found && m.found->scope == auth::scope::none);
  if (!open)
    return guard->check_head(head);
  if (m.found)
    return std::nullopt;
  if (m.path_known)
    return error_response(405, "method_not_allowed", head.method + " is not allowed on this path");
  return error_response(404, "not_found", "no such endpoint");
}

handler_fn serve(std::shared_ptr<const route_table> table) {
  return [table](caf::event_based_actor* self, request&& req, reply_fn reply) {
    dispatch(*table, self, std::move(req), std::move(reply));
  };
}

} // namespace joule::http
