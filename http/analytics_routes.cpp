#include "http/analytics_routes.hpp"

#include <chrono>

#include "core/interfaces.hpp"
#include "core/timefmt.hpp"
#include "http/errors.hpp"
#include "http/render.hpp"

namespace joule::http {
namespace {

using env_ptr = std::shared_ptr<const route_env>;

response ok(std::string body, cache_outcome outcome) {
  response r;
  r.body = std::move(body);
  r.headers.emplace_back("X-Cache", to_string(outcome));
  return r;
}

// The cache and pool requests carry no CAF timeout. The pool answers at db.request_deadline
// itself, and the session actor answers the client at http.request_timeout whatever happens.
// CAF 0.17 never cancels a request's timeout: each timed request would wake the long-lived
// session actor once more when it expires (10-30 % of the server's CPU per answer in the
// warm-cache benchmark). A lost actor's continuation stays in the session until the
// connection closes.
constexpr auto no_timeout = caf::infinite;

// Asks the cache for `key`; on a miss this caller computes the answer with the typed `query`
// on the DB pool, renders it with `render`, and hands the body back to the cache (which passes
// it to everyone who asked for the key meanwhile).
template <class Query, class Result, class Render>
void cached(caf::event_based_actor* self, const env_ptr& env, std::string key, Query query,
            Render render, reply_fn reply) {
  // A hot answer is served on this session actor's thread: no message to the broker and back
  // (two actor hops, which cost about a third more CPU per answer than the whole lookup).
  if (env->near)
    if (auto body = env->near->find(key, self->clock().now()))
      return reply(ok(std::move(*body), cache_outcome::hit));
  auto pool = env->registry->get<db_pool_actor>();
  if (!pool)
    return reply(starting_response());
  auto cache = env->registry->get<cache_actor>();
  auto compute = [self, env, pool, cache, key, query, render, reply](cache_outcome outcome) {
    self->request(pool, no_timeout, query)
        .then(
            [self, cache, key, render, reply, outcome](Result& r) {
              auto body = render(r);
              if (cache)
                self->send(cache, put_atom::value, key, body, r.meta.live);
              reply(ok(std::move(body), outcome));
            },
            [self, cache, key, reply](caf::error& e) {
              if (cache)
                self->send(cache, drop_atom::value, key, e);
              reply(error_response(e));
            });
  };
  if (!cache)
    return compute(cache_outcome::bypass);
  self->request(cache, no_timeout, get_atom::value, key)
      .then(
          [reply, compute](cache_lookup& l) {
            if (l.found)
              reply(ok(std::move(l.body), l.outcome));
            else
              compute(l.outcome);
          },
          [reply, compute](caf::error& e) {
            // The broker itself failed (restarting): answer from the database.
            if (e.category() != caf::atom("joule"))
              return compute(cache_outcome::bypass);
            reply(error_response(e));
          });
}

limits limits_of(const route_env& env) {
  return {env.settings.api_max_points, env.settings.api_top_limit_max};
}

std::string raw_suffix(const route_env& env) { return env.settings.api_read_raw ? ":raw" : ""; }

// A household the caller may not see is answered exactly like an unknown one (same status,
// code and message as the DB pool's), before the cache: no existence oracle, and a cached
// answer never reaches a token restricted to other households.
response household_hidden(const std::string& id) {
  return error_response(404, "household_not_found", "no household " + id + " is registered");
}

// A restricted caller's device answers are computed with its households as a filter (a
// device of another household is not found), so they are cached under keys of their own.
std::string tenant_suffix(const auth::identity& who) {
  if (!who.restricted())
    return {};
  std::string joined;
  for (auto& h : who.households)
    joined += h + ",";
  return ":t=" + auth::to_hex(auth::sha256(joined)).substr(0, 16);
}

route series_route(const char* pattern, const char* name, series_kind kind, env_ptr env) {
  route r;
  r.method = "GET";
  r.pattern = pattern;
  r.name = name;
  r.scope = auth::scope::read;
  r.handler = [env, kind, name](caf::event_based_actor* self, route_request& req, reply_fn reply) {
    const bool energy = kind == series_kind::household_energy;
    auto now = now_micros();
    auto parsed = energy ? parse_energy(req.params, now, limits_of(*env))
                         : parse_power(req.params, now, limits_of(*env));
    if (auto* e = std::get_if<api_error>(&parsed))
      return reply(error_response(*e));
    auto q = std::get<series_query>(parsed);
    q.kind = kind;
    std::string tenant;
    if (energy && !req.who.may_see(q.id))
      return reply(household_hidden(q.id));
    if (!energy) {
      q.households = req.who.households;
      tenant = tenant_suffix(req.who);
    }
    auto& query = req.params.query;
    std::string step = query.count("step") ? query.at("step") : (energy ? "5m" : "1m");
    auto key = std::string(name) + ":" + q.id + ":" + std::to_string(q.start) + ":" +
               std::to_string(q.end) + ":" + step + raw_suffix(*env) + tenant;
    auto render = [q, step, energy](const series_result& r) {
      return energy ? render_energy(q, step, r) : render_power(q, step, r);
    };
    cached<series_query, series_result>(self, env, std::move(key), q, render, std::move(reply));
  };
  return r;
}

} // namespace

void add_analytics_routes(route_table& table, std::shared_ptr<const route_env> env) {
  table.add(series_route("/analytics/households/{id}/energy", "energy",
                         series_kind::household_energy, env));
  table.add(series_route("/analytics/devices/{id}/power", "power", series_kind::device_power,
                         env));
  route top;
  top.method = "GET";
  top.pattern = "/analytics/households/{id}/top-devices";
  top.name = "top_devices";
  top.scope = auth::scope::read;
  top.handler = [env](caf::event_based_actor* self, route_request& req, reply_fn reply) {
    auto parsed = parse_top(req.params, now_micros(), limits_of(*env));
    if (auto* e = std::get_if<api_error>(&parsed))
      return reply(error_response(*e));
    auto q = std::get<top_query>(parsed);
    if (!req.who.may_see(q.household_id))
      return reply(household_hidden(q.household_id));
    auto key = "top:" + q.household_id + ":" + std::to_string(q.start) + ":" +
               std::to_string(q.limit) + raw_suffix(*env);
    auto render = [q](const top_result& r) { return render_top(q, r); };
    cached<top_query, top_result>(self, env, std::move(key), q, render, std::move(reply));
  };
  table.add(std::move(top));
}

} // namespace joule::http
