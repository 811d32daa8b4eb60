#include "rules/alert_routes.hpp"

#include <memory>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>

#include "core/registry.hpp"
#include "core/timefmt.hpp"
#include "db/db_pool.hpp"
#include "db/db_worker.hpp"
#include "http/render.hpp"
#include "http/router.hpp"
#include "rules/alert_interfaces.hpp"
#include "rules/rule_sql.hpp"

namespace joule::rules {
namespace {

using http::respond_fn;
using http::response;

response json_error(int status, const std::string& code, const std::string& message) {
  response r;
  r.status = status;
  r.body = http::render_error(code, message);
  if (status == 503)
    r.headers.emplace_back("Retry-After", "1");
  return r;
}

// What a handler needs after the I/O thread returned: no reference into the api_context.
struct route_env {
  caf::actor_system* system = nullptr;
  std::shared_ptr<service_registry> registry;
  rule_limits limits;
  std::chrono::milliseconds deadline{3000};
};

route_env env_of(const http::api_context& ctx) {
  const auto& s = ctx.settings;
  return {ctx.system, ctx.registry,
          rule_limits{s.alerts_allowed_hosts, s.alerts_allow_private_targets,
                      s.http_json_max_depth},
          s.db_request_deadline};
}

// Runs `job` on the pool; `then` runs on a CAF thread with the answer (status 200 when the
// job itself decided nothing else).
void run_job(const route_env& env, db_job job, std::function<void(db_answer)> then) {
  auto pool = env.registry->get_as<db_pool_actor>("db_pool");
  if (!pool) {
    then(db::error_answer(503, "starting", "the server is (re)starting; retry shortly"));
    return;
  }
  db::ask_pool(*env.system, pool, std::move(job), std::move(then));
}

response from_answer(const db_answer& a) {
  response r;
  r.status = a.status;
  r.body = a.body;
  if (a.status == 503 || a.status == 504) {
    r.status = 503;
    r.headers.emplace_back("Retry-After", "1");
  }
  return r;
}

void tell_manager(const route_env& env, const alert_rule& rule) {
  if (auto m = env.registry->get_as<alert_manager_actor>("alerts.manager"))
    caf::anon_send(m, rule_set_atom::value, rule);
}

void tell_manager_drop(const route_env& env, const std::string& id) {
  if (auto m = env.registry->get_as<alert_manager_actor>("alerts.manager"))
    caf::anon_send(m, rule_drop_atom::value, id);
}

db_answer rule_answer(int status, const alert_rule& r) {
  db_answer a;
  a.status = status;
  a.body = render_rule(r);
  return a;
}

db_answer scope_missing(const alert_rule& r) {
  return db::error_answer(404, r.scope == scope_kind::device ? "device_not_found"
                                                             : "household_not_found",
                          std::string("no ") + to_string(r.scope) + " " + r.scope_id +
                              " is registered");
}

db_answer rule_missing(const std::string& id) {
  return db::error_answer(404, "rule_not_found", "no alert rule " + id);
}

// Writes (create/update) share this: run, then forward the stored rule to the manager.
void write_rule(const route_env& env, db_job job, std::shared_ptr<alert_rule> stored,
                respond_fn done) {
  run_job(env, std::move(job), [env, stored, done](db_answer a) {
    // Forward before answering: a client that reads the response can rely on the change
    // being on its way to the evaluators.
    if ((a.status == 200 || a.status == 201) && !stored->id.empty())
      tell_manager(env, *stored);
    done(from_answer(a));
  });
}

std::variant<alert_rule, response> parse_body(const route_env& env,
                                              const http::routed_request& req) {
  auto parsed = parse_rule(req.body, env.limits);
  if (auto* e = std::get_if<rule_error>(&parsed))
    return json_error(400, e->code, e->message);
  return std::get<alert_rule>(parsed);
}

} // namespace

http::feature_handler rules_handler(const http::api_context& ctx) {
  auto env = env_of(ctx);
  return [env](http::routed_request&& req, respond_fn done) {
    if (req.method == "GET") {
      db_job job;
      job.label = "alerts.list_rules";
      job.timeout = env.deadline;
      job.run = [](db::session& s) {
        db_answer a;
        a.body = render_rules(list_rules(s));
        return a;
      };
      return run_job(env, std::move(job), [done](db_answer a) { done(from_answer(a)); });
    }
    auto parsed = parse_body(env, req);
    if (auto* r = std::get_if<response>(&parsed))
      return done(std::move(*r));
    auto rule = std::get<alert_rule>(std::move(parsed));
    auto stored = std::make_shared<alert_rule>();
    db_job job;
    job.label = "alerts.create_rule";
    job.timeout = env.deadline;
    job.retry_on_disconnect = false;  // an insert that may have committed must not run twice
    job.run = [rule, stored](db::session& s) {
      auto w = create_rule(s, rule);
      if (w.scope_missing)
        return scope_missing(rule);
      *stored = *w.stored;
      return rule_answer(201, *stored);
    };
    write_rule(env, std::move(job), stored, std::move(done));
  };
}

http::feature_handler rule_handler(const http::api_context& ctx) {
  auto env = env_of(ctx);
  return [env](http::routed_request&& req, respond_fn done) {
    auto id = http::normalize_uuid(req.id);
    if (!id)
      return done(json_error(400, "invalid_rule_id", "rule id '" + req.id + "' is not a UUID"));
    if (req.method == "GET") {
      db_job job;
      job.label = "alerts.get_rule";
      job.timeout = env.deadline;
      job.run = [id = *id](db::session& s) {
        auto r = get_rule(s, id);
        return r ? rule_answer(200, *r) : rule_missing(id);
      };
      return run_job(env, std::move(job), [done](db_answer a) { done(from_answer(a)); });
    }
    if (req.method == "DELETE") {
      db_job job;
      job.label = "alerts.delete_rule";
      job.timeout = env.deadline;
      job.run = [id = *id](db::session& s) {
        if (!delete_rule(s, id))
          return rule_missing(id);
        db_answer a;
        a.status = 204;
        return a;
      };
      return run_job(env, std::move(job), [env, id = *id, done](db_answer a) {
        if (a.status == 204)
          tell_manager_drop(env, id);
        done(from_answer(a));
      });
    }
    // PUT replaces the whole definition (same validation as POST).
    auto parsed = parse_body(env, req);
    if (auto* r = std::get_if<response>(&parsed))
      return done(std::move(*r));
    auto rule = std::get<alert_rule>(std::move(parsed));
    auto stored = std::make_shared<alert_rule>();
    db_job job;
    job.label = "alerts.update_rule";
    job.timeout = env.deadline;
    job.retry_on_disconnect = false;
    job.run = [id = *id, rule, stored](db::session& s) {
      auto w = update_rule(s, id, rule);
      if (w.rule_missing)
        return rule_missing(id);
      if (w.scope_missing)
        return scope_missing(rule);
      *stored = *w.stored;
      return rule_answer(200, *stored);
    };
    write_rule(env, std::move(job), stored, std::move(done));
  };
}

http::feature_handler events_handler(const http::api_context& ctx) {
  auto env = env_of(ctx);
  return [env](http::routed_request&& req, respond_fn done) {
    if (!req.bad_query.empty())
      return done(json_error(400, "bad_query", req.bad_query));
    std::optional<std::string> rule_id;
    std::optional<std::int64_t> since;
    int limit = 100;
    for (auto& [k, v] : req.query) {
      if (k == "rule_id") {
        rule_id = http::normalize_uuid(v);
        if (!rule_id)
          return done(json_error(400, "invalid_rule_id", "rule_id '" + v + "' is not a UUID"));
      } else if (k == "since") {
        since = parse_rfc3339(v);
        if (!since)
          return done(json_error(400, "invalid_since",
                                 "since '" + v + "' is not an RFC 3339 timestamp"));
      } else if (k == "limit") {
        char* end = nullptr;
        long n = std::strtol(v.c_str(), &end, 10);
        if (v.empty() || *end != '\0' || n < 1 || n > 1000)
          return done(json_error(400, "invalid_limit", "limit must be an integer from 1 to 1000"));
        limit = static_cast<int>(n);
      } else {
        return done(json_error(400, "unknown_parameter", "unknown query parameter '" + k + "'"));
      }
    }
    db_job job;
    job.label = "alerts.events";
    job.timeout = env.deadline;
    job.run = [rule_id, since, limit](db::session& s) {
      db_answer a;
      a.body = render_events(list_events(s, rule_id, since, limit));
      return a;
    };
    run_job(env, std::move(job), [done](db_answer a) { done(from_answer(a)); });
  };
}

} // namespace joule::rules
