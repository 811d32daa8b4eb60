#include "http/api.hpp"

#include <chrono>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>

#include "core/interfaces.hpp"
#include "core/metrics.hpp"
#include "core/registry.hpp"
#include "core/timefmt.hpp"
#include "db/db_pool.hpp"
#include "db/db_worker.hpp"
#include "db/session.hpp"
#include "http/render.hpp"
#include "http/router.hpp"

namespace joule::http {
namespace {

const char* route_name(route r) {
  switch (r) {
    case route::energy: return "energy";
    case route::top_devices: return "top_devices";
    case route::power: return "power";
    case route::healthz: return "healthz";
    case route::readyz: return "readyz";
    case route::metrics: return "metrics";
    case route::admin_status: return "admin_status";
    case route::telemetry: return "telemetry";
    case route::alert_rules: return "alert_rules";
    case route::alert_rule: return "alert_rule";
    case route::alert_events: return "alert_events";
    case route::not_found: return "not_found";
    case route::method_not_allowed: return "method_not_allowed";
  }
  return "other";
}

response json_error(int status, const std::string& code, const std::string& message) {
  response r;
  r.status = status;
  r.body = render_error(code, message);
  return r;
}

response from_answer(const db_answer& a) {
  response r;
  r.status = a.status;
  r.body = a.body;
  if (a.status == 503 || a.status == 504) {
    // Overload and an unreachable database are both "come back shortly".
    r.status = 503;
    r.headers.emplace_back("Retry-After", "1");
  }
  return r;
}

// Sends a job through the cache broker; the answer carries X-Cache.
void cached(const api_context& ctx, std::string key, db_job job, respond_fn done) {
  auto cache = ctx.registry->get_as<cache_actor>("cache");
  if (!cache) {
    auto r = json_error(503, "starting", "the server is (re)starting; retry shortly");
    r.headers.emplace_back("Retry-After", "1");
    done(std::move(r));
    return;
  }
  cached_read read;
  read.key = std::move(key);
  read.job = std::move(job);
  read.reply = [done = std::move(done)](cache_answer ca) {
    auto r = from_answer(ca.answer);
    r.headers.emplace_back("X-Cache", to_string(ca.outcome));
    done(std::move(r));
  };
  caf::anon_send(cache, std::move(read));
}

// Runs a job on the pool without the cache (readiness, writes).
void direct(const api_context& ctx, db_job job, respond_fn done) {
  auto pool = ctx.registry->get_as<db_pool_actor>("db_pool");
  if (!pool) {
    done(json_error(503, "starting", "the server is (re)starting; retry shortly"));
    return;
  }
  db::ask_pool(*ctx.system, pool, std::move(job),
               [done = std::move(done)](db_answer a) { done(from_answer(a)); });
}

std::string series_key(const char* kind, const db::series_query& q, const std::string& step,
                       bool raw) {
  return std::string(kind) + ":" + q.id + ":" + std::to_string(q.start) + ":" +
         std::to_string(q.end) + ":" + step + (raw ? ":raw" : "");
}

// Asks every registered actor for its status and answers with one JSON object. (A named
// function with arguments: CAF 0.17 mishandles argument-less function actors.)
void collect_status(caf::event_based_actor* self,
                    std::vector<std::pair<std::string, caf::actor>> sources, respond_fn done) {
  {
    auto results = std::make_shared<std::vector<std::string>>(sources.size(), "null");
    auto pending = std::make_shared<std::size_t>(sources.size());
    auto finish = [self, sources, results, done] {
      std::string body = "{";
      for (std::size_t i = 0; i < sources.size(); ++i)
        body += (i ? ",\"" : "\"") + sources[i].first + "\":" + (*results)[i];
      response r;
      r.body = body + "}";
      done(std::move(r));
      self->quit();
    };
    if (sources.empty())
      return finish();
    for (std::size_t i = 0; i < sources.size(); ++i) {
      auto step = [i, pending, results, finish](std::string s) {
        (*results)[i] = std::move(s);
        if (--*pending == 0)
          finish();
      };
      self->request(sources[i].second, std::chrono::seconds(2), status_atom::value)
          .then([step](std::string& s) { step(std::move(s)); },
                [step](caf::error&) { step("null"); });
    }
  }
}

void admin_status(const api_context& ctx, respond_fn done) {
  ctx.system->spawn(collect_status, ctx.registry->all(), std::move(done));
}

} // namespace

handler_fn make_api_handler(std::shared_ptr<api_context> ctx) {
  return [ctx](request&& req, respond_fn respond) {
    auto started = std::chrono::steady_clock::now();
    auto m = match(req.method, req.target);
    const char* rname = route_name(m.kind);
    respond_fn done = [respond = std::move(respond), started, rname](response r) {
      auto secs =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
      metrics::global()
          .get_histogram("joule_http_request_duration_seconds",
                         "HTTP request latency by route and status",
                         metrics::label("route", rname) + "," +
                             metrics::label("status", std::to_string(r.status)))
          .observe(secs);
      respond(std::move(r));
    };
    const auto& cfg = ctx->settings;
    limits lim{cfg.api_max_points, cfg.api_top_limit_max};
    const auto mode = cfg.api_read_raw ? db::read_mode::raw : db::read_mode::rollups;
    const bool raw = cfg.api_read_raw;
    auto now = now_micros();
    switch (m.kind) {
      case route::energy:
      case route::power: {
        bool energy = m.kind == route::energy;
        auto parsed = energy ? parse_energy(m, now, lim) : parse_power(m, now, lim);
        if (auto* e = std::get_if<api_error>(&parsed))
          return done(json_error(e->status, e->code, e->message));
        auto q = std::get<db::series_query>(parsed);
        std::string step = m.query.count("step") ? m.query.at("step") : (energy ? "5m" : "1m");
        db_job job;
        job.label = rname;
        job.timeout = cfg.db_request_deadline;
        job.run = [q, step, mode, energy, wm = ctx->watermarks](db::session& s) {
          auto r = energy ? db::household_energy(s, q, mode, wm.get())
                          : db::device_power(s, q, mode, wm.get());
          if (!r.meta.found)
            return energy ? db::error_answer(404, "household_not_found",
                                             "no household " + q.id + " is registered")
                          : db::error_answer(404, "device_not_found",
                                             "no device " + q.id + " is registered");
          db_answer a;
          a.body = energy ? render_energy(q, step, r) : render_power(q, step, r);
          a.live = r.meta.live;
          return a;
        };
        return cached(*ctx, series_key(energy ? "energy" : "power", q, step, raw), std::move(job),
                      std::move(done));
      }
      case route::top_devices: {
        auto parsed = parse_top(m, now, lim);
        if (auto* e = std::get_if<api_error>(&parsed))
          return done(json_error(e->status, e->code, e->message));
        auto q = std::get<db::top_query>(parsed);
        db_job job;
        job.label = rname;
        job.timeout = cfg.db_request_deadline;
        job.run = [q, mode, wm = ctx->watermarks](db::session& s) {
          auto r = db::top_devices(s, q, mode, wm.get());
          if (!r.meta.found)
            return db::error_answer(404, "household_not_found",
                                    "no household " + q.household_id + " is registered");
          db_answer a;
          a.body = render_top(q, r);
          a.live = r.meta.live;
          return a;
        };
        return cached(*ctx,
                      "top:" + q.household_id + ":" + std::to_string(q.start) + ":" +
                          std::to_string(q.limit) + (raw ? ":raw" : ""),
                      std::move(job), std::move(done));
      }
      case route::healthz: {
        response r;
        r.body = "{\"status\":\"ok\"}";
        return done(std::move(r));
      }
      case route::readyz: {
        db_job job;
        job.label = "readyz";
        job.timeout = std::chrono::milliseconds(1000);
        job.run = [](db::session& s) {
          s.ping();
          db_answer a;
          a.body = "{\"status\":\"ready\"}";
          return a;
        };
        return direct(*ctx, std::move(job), std::move(done));
      }
      case route::metrics: {
        response r;
        r.content_type = "text/plain; version=0.0.4";
        r.body = metrics::global().render();
        return done(std::move(r));
      }
      case route::admin_status:
        return admin_status(*ctx, std::move(done));
      case route::method_not_allowed:
        return done(json_error(405, "method_not_allowed",
                               req.method + " is not allowed on this path"));
      case route::telemetry:
      case route::alert_rules:
      case route::alert_rule:
      case route::alert_events: {
        auto& h = m.kind == route::telemetry     ? ctx->telemetry
                  : m.kind == route::alert_rules ? ctx->alert_rules
                  : m.kind == route::alert_rule  ? ctx->alert_rule
                                                 : ctx->alert_events;
        if (!h)
          return done(json_error(501, "not_implemented", "this endpoint is not enabled"));
        routed_request rr{req.method, m.id, std::move(m.query), std::move(m.bad_query),
                          std::move(req.body), std::move(req.content_type)};
        return h(std::move(rr), std::move(done));
      }
      case route::not_found:
        break;
    }
    done(json_error(404, "not_found", "no such endpoint"));
  };
}

} // namespace joule::http
