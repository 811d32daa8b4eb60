#include "http/analytics_routes.hpp"

#include <algorithm>
#include <chrono>
#include <functional>
#include <string_view>

#include "cache/settled_keys.hpp"
#include "cache/settled_series.hpp"
#include "core/interfaces.hpp"
#include "core/timefmt.hpp"
#include "db/live_tail.hpp"
#include "db/replica.hpp"
#include "http/cache_ask.hpp"
#include "http/errors.hpp"
#include "http/live_routes.hpp"
#include "http/render.hpp"
#include "http/settled_parts.hpp"

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
            drop_and_fail(self, cache, key, reply));
  };
  ask_cache(
      self, cache, key, [reply](cache_lookup& l) { reply(ok(std::move(l.body), l.outcome)); },
      compute, reply);
}

// --- live reads (issue 9): settled part from memory (by version) + live part from the tail

using points_t = std::vector<std::pair<std::int64_t, std::optional<double>>>;

constexpr std::int64_t five_min_us = 5 * 60 * micros_per_second;

const std::string series_open = "\"series\":[";
// Part of every settled key: bodies of another format never match.
const std::string settled_format = "|json-elements-1";

// A household energy series from a live snapshot, or false when the snapshot cannot answer
// it (unknown household, watermark too far behind, window older than the versions it holds):
// the caller then asks the database as before.
bool live_energy(caf::event_based_actor* self, const env_ptr& env, const series_query& q,
                 const std::string& step, const db::live_snapshot_ptr& snap, reply_fn& reply) {
  if (!snap->households_ok || q.step % five_min_us != 0 || !snap->households.count(q.id))
    return false;
  const auto wm5 = *snap->wm_household_5m;
  const auto wm1 = *snap->wm_device_1m;
  // Settled: whole answer buckets below the household 5 min watermark; live: the rest.
  const auto split = std::clamp(floor_to(wm5, q.step), q.start, q.end);
  if (split < q.end && split < snap->household_lo)
    return false;
  if (split > q.start && q.start < snap->versions_from)
    return false;
  // A late write pending in this household's window: the database path serves it exactly.
  if (snap->late_touches("household_5m", q.start, std::min(wm5, q.end), q.id) ||
      (q.end > wm5 && snap->late_touches("device_1m", wm5, std::min(wm1, q.end), q.id)))
    return false;
  // Answerable from the snapshot (the caller checked the household is visible to it): a poll
  // of the same window on it shares the answer.
  auto memo = answer_key(*env, "energy", *snap,
                         q.id + "|" + std::to_string(q.start) + "|" + std::to_string(q.end) +
                             "|" + step);
  if (answer_from_memo(self, *env, memo, reply))
    return true;
  // Truthful freshness: the snapshot's instant, unless a late write no refresh has reflected
  // yet lies in a rollup range this answer reads (as the database path computes it).
  auto fresh = snap->db_now;
  lower_to(fresh, snap->fresh_cap("household_5m", q.start, std::min(wm5, q.end)));
  if (q.end > wm5)
    lower_to(fresh, snap->fresh_cap("device_1m", wm5, std::min(wm1, q.end)));
  points_t live;
  if (auto it = snap->household_5m.find(q.id); it != snap->household_5m.end())
    for (auto& b : it->second) {
      if (b.start < split || b.start >= q.end)
        continue;
      auto t = floor_to(b.start, q.step);
      if (live.empty() || live.back().first != t)
        live.emplace_back(t, b.energy_sum);
      else if (b.energy_sum)
        live.back().second = live.back().second ? *live.back().second + *b.energy_sum : *b.energy_sum;
    }
  // The settled part travels as the rendered text of its series elements (memory and Redis
  // hold exactly that), so a poll renders only the header and the live buckets.
  auto finish = [self, env, memo, q, step, fresh, live, reply](std::string_view settled,
                                                               cache_outcome outcome) {
    series_result r;
    r.meta.found = true;
    r.meta.fresh_as_of = fresh;
    r.meta.live = true;
    for (auto& [t, v] : live)
      r.series.push_back(point{t, v, std::nullopt});
    auto head = render_energy(q, step, r);
    if (settled.empty()) {
      keep_answer(self, *env, memo, head);
      return reply(ok(std::move(head), outcome));
    }
    auto at = head.rfind(series_open);
    if (at == std::string::npos)
      return reply(error_response(500, "internal", "internal error"));
    at += series_open.size();
    std::string body;
    body.reserve(head.size() + settled.size() + 1);
    body.append(head, 0, at);
    body.append(settled.data(), settled.size());
    if (!live.empty())
      body += ',';
    body.append(head, at, std::string::npos);
    keep_answer(self, *env, memo, body);
    reply(ok(std::move(body), outcome));
  };
  if (split <= q.start) {
    finish({}, cache_outcome::hit);
    return true;
  }
  const auto part_key = settled_series_key(q.id, q.step);
  if (auto part = settled_from_memory(*env->series, part_key, *snap, q.id, q.step, q.start, split)) {
    finish(part->slice(q.start, split), cache_outcome::hit);
    return true;
  }
  auto pool = env->registry->get<db_pool_actor>();
  if (!pool) {
    reply(starting_response());
    return true;
  }
  auto cache = env->registry->get<cache_actor>();
  const auto expected = snap->version_text("household_5m", q.start, split);
  auto key = cache::settled_key("household_5m", q.id, q.step, q.start, split,
                                expected + settled_format);
  // Not in memory: Redis next (the same versioned key, shared by every instance), then the
  // database. The broker's single-flight applies: one computation per key at a time.
  auto compute = [self, env, pool, cache, q, split, key, part_key, finish, reply, expected](
                     cache_outcome outcome) {
    db_job job;
    job.label = "energy.settled";
    job.timeout = env->settings.db_request_deadline;
    job.run = [id = q.id, step = q.step, lo = q.start, hi = split](db::session& s) -> std::any {
      return db::settled_energy(s, id, step, lo, hi);
    };
    // On a standby (db.read_url) only with exactly the rows this snapshot names.
    job.run_on_standby = [id = q.id, step = q.step, lo = q.start, hi = split,
                          expected](db::session& s) -> std::any {
      return db::settled_energy_on_standby(s, id, step, lo, hi, expected);
    };
    self->request(pool, no_timeout, std::move(job))
        .then(
            [self, env, cache, q, split, key, part_key, finish, reply, outcome](db_done& d) {
              auto* read = std::any_cast<db::settled_part>(&d.value);
              auto part = read ? settled_from_points(q.start, split, read->versions, read->points)
                               : nullptr;
              if (!part) {
                if (cache)
                  self->send(cache, drop_atom::value, key,
                             make_error(errc::internal, "internal", "internal error"));
                return reply(error_response(500, "internal", "internal error"));
              }
              // Kept under the versions it was read at. If a refresh landed since the
              // snapshot, joining it with this snapshot stays truthful (its rows reflect at
              // least what the snapshot's do), and so does handing it to whoever waits for
              // the snapshot's key; the next snapshot names its versions.
              keep_settled(*env->series, part_key, part);
              if (cache)
                self->send(cache, put_atom::value, key, part->text, false);
              finish(part->text, outcome);
            },
            [self, cache, key, reply](caf::error& e) {
              if (cache)
                self->send(cache, drop_atom::value, key, e);
              reply(error_response(e));
            });
  };
  if (!cache) {
    compute(cache_outcome::bypass);
    return true;
  }
  self->request(cache, no_timeout, get_atom::value, key)
      .then(
          [env, q, split, part_key, expected, finish, compute](cache_lookup& l) {
            if (!l.found)
              return compute(l.outcome);
            auto part = std::make_shared<cache::series_part>();
            part->lo = q.start;
            part->hi = split;
            // A body that is not series elements (damaged in Redis) is a miss: read again,
            // and the read's SET replaces it.
            if (!cache::parse_versions(expected, part->versions) ||
                !parse_energy_elements(l.body, *part))
              return compute(cache_outcome::miss);
            keep_settled(*env->series, part_key, part);
            finish(part->text, l.outcome);
          },
          [reply, compute](caf::error& e) {
            if (e.category() != caf::atom("joule"))
              return compute(cache_outcome::bypass);
            reply(error_response(e));
          });
  return true;
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
    if (energy && env->live && env->series && !env->settings.api_read_raw)
      if (auto snap = env->live->fresh(live_max_age(*env)))
        if (live_energy(self, env, q, step, snap, reply))
          return;
    if (!energy && env->live && env->settled && !env->settings.api_read_raw)
      if (auto snap = env->live->fresh(live_max_age(*env)))
        if (live_power(self, env, q, step, req.who, snap, reply))
          return;
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
    if (env->live && env->settled && !env->settings.api_read_raw)
      if (auto snap = env->live->fresh(live_max_age(*env)))
        if (live_top(self, env, q, snap, reply))
          return;
    auto key = "top:" + q.household_id + ":" + std::to_string(q.start) + ":" +
               std::to_string(q.limit) + raw_suffix(*env);
    auto render = [q](const top_result& r) { return render_top(q, r); };
    cached<top_query, top_result>(self, env, std::move(key), q, render, std::move(reply));
  };
  table.add(std::move(top));
}

} // namespace joule::http
