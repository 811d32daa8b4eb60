#include "http/system_routes.hpp"

#include <chrono>

#include "core/interfaces.hpp"
#include "core/log.hpp"
#include "core/metrics.hpp"
#include "core/process_metrics.hpp"
#include "db/session.hpp"
#include "http/errors.hpp"

namespace joule::http {
namespace {

using env_ptr = std::shared_ptr<const route_env>;

route get(const char* pattern, const char* name, route_handler h,
          auth::scope scope = auth::scope::admin) {
  route r;
  r.method = "GET";
  r.pattern = pattern;
  r.name = name;
  r.scope = scope;
  r.handler = std::move(h);
  return r;
}

response json(std::string body) {
  response r;
  r.body = std::move(body);
  return r;
}

// Asks every published actor for its status and answers with one JSON object.
void admin_status(caf::event_based_actor* self, const route_env& env, reply_fn reply) {
  auto sources = env.registry->status_sources();
  if (sources.empty())
    return reply(json("{}"));
  auto results = std::make_shared<std::vector<std::string>>(sources.size(), "null");
  auto pending = std::make_shared<std::size_t>(sources.size());
  auto names = std::make_shared<std::vector<std::string>>();
  for (auto& s : sources)
    names->push_back(s.first);
  for (std::size_t i = 0; i < sources.size(); ++i)
    sources[i].second(self, [i, results, pending, names, reply](std::string s) {
      (*results)[i] = std::move(s);
      if (--*pending > 0)
        return;
      std::string body = "{";
      for (std::size_t k = 0; k < names->size(); ++k)
        body += (k ? ",\"" : "\"") + (*names)[k] + "\":" + (*results)[k];
      reply(json(body + "}"));
    });
}

// GET /admin/config: every setting in effect (after SIGHUP reloads), secrets redacted.
response admin_config(const route_env& env) {
  auto current = env.current ? env.current->get() : env.settings;
  std::string body = "{\"settings\":{";
  bool first = true;
  for (auto& [key, value] : config::redacted(current)) {
    body += (first ? "" : ",") + json_quote(key) + ":" + json_quote(value);
    first = false;
  }
  body += "},\"live_keys\":[";
  first = true;
  for (auto& key : config::live_keys()) {
    body += (first ? "" : ",") + json_quote(key);
    first = false;
  }
  return json(body + "]}");
}

} // namespace

void add_system_routes(route_table& table, std::shared_ptr<const route_env> env) {
  table.add(get("/healthz", "healthz", [](caf::event_based_actor*, route_request&, reply_fn reply) {
    reply(json("{\"status\":\"ok\"}"));
  }, auth::scope::none));
  table.add(get("/readyz", "readyz",
                [env](caf::event_based_actor* self, route_request&, reply_fn reply) {
                  auto pool = env->registry->get<db_pool_actor>();
                  if (!pool)
                    return reply(starting_response());
                  db_job job;
                  job.label = "readyz";
                  job.timeout = std::chrono::milliseconds(1000);
                  job.run = [](db::session& s) {
                    s.ping();
                    return std::any{};
                  };
                  self->request(pool, std::chrono::seconds(2), std::move(job))
                      .then([reply](db_done&) { reply(json("{\"status\":\"ready\"}")); },
                            [reply](caf::error& e) { reply(error_response(e)); });
                },
                auth::scope::none));
  table.add(get("/metrics", "metrics", [](caf::event_based_actor*, route_request&, reply_fn reply) {
    response r;
    r.content_type = "text/plain; version=0.0.4";
    r.body = metrics::global().render();
    metrics::render_process(r.body);
    reply(std::move(r));
  }));
  table.add(get("/admin/config", "admin_config",
                [env](caf::event_based_actor*, route_request&, reply_fn reply) {
                  reply(admin_config(*env));
                }));
  table.add(get("/admin/status", "admin_status",
                [env](caf::event_based_actor* self, route_request&, reply_fn reply) {
                  admin_status(self, *env, std::move(reply));
                }));
}

} // namespace joule::http
