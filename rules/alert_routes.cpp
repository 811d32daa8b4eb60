#include "rules/alert_routes.hpp"

#include <cstdlib>
#include <memory>

#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>

#include "core/registry.hpp"
#include "core/timefmt.hpp"
#include "http/errors.hpp"
#include "http/pool_job.hpp"
#include "http/router.hpp"
#include "rules/alert_interfaces.hpp"
#include "rules/receiver_sql.hpp"
#include "rules/rule_sql.hpp"
#include "rules/silence_sql.hpp"

namespace joule::rules {
namespace {

using env_ptr = std::shared_ptr<const http::route_env>;
using http::reply_fn;
using http::response;
using http::route_request;

response json(int status, std::string body) {
  response r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

failure scope_missing(const alert_rule& r) {
  failure f;
  f.code = errc::not_found;
  f.slug = r.scope == scope_kind::device ? "device_not_found" : "household_not_found";
  f.message = std::string("no ") + to_string(r.scope) + " " + r.scope_id + " is registered";
  return f;
}

failure scope_forbidden(const alert_rule& r) {
  failure f;
  f.code = errc::forbidden;
  f.slug = "forbidden";
  f.message = std::string("this token may not place rules on ") + to_string(r.scope) + " " +
              r.scope_id + " (outside its households)";
  return f;
}

failure receiver_missing(const std::string& id) {
  failure f;
  f.code = errc::not_found;
  f.slug = "receiver_not_found";
  f.message = "no alert receiver " + id;
  return f;
}

failure rule_missing(const std::string& id) {
  failure f;
  f.code = errc::not_found;
  f.slug = "rule_not_found";
  f.message = "no alert rule " + id;
  return f;
}

// A create or update: stores the rule, forwards it to the manager, then answers. Forwarding
// before answering lets a client that reads the response rely on the change being on its way
// to the evaluators.
void write_rule(caf::event_based_actor* self, const env_ptr& env, const char* label,
                std::function<alert_rule(db::session&)> store, int status, reply_fn reply) {
  http::on_pool<alert_rule>(self, env, label, false, std::move(store), reply,
                      [self, env, status, reply](alert_rule stored) {
                        if (auto m = env->registry->get<alert_manager_actor>())
                          self->send(m, rule_set_atom::value, stored);
                        // Changed labels may end a silence's match: release checks now.
                        if (auto j = env->registry->get<alert_janitor_actor>())
                          self->send(j, nudge_atom::value);
                        reply(json(status, render_rule(stored)));
                      });
}

std::optional<alert_rule> parse_body(const env_ptr& env, const route_request& req,
                                     const reply_fn& reply) {
  const auto& s = env->settings;
  auto parsed = parse_rule(req.raw.body, rule_limits{s.alerts_allowed_hosts,
                                                     s.alerts_allow_private_targets,
                                                     s.http_json_max_depth});
  if (auto* e = std::get_if<rule_error>(&parsed)) {
    reply(http::error_response(400, e->code, e->message));
    return std::nullopt;
  }
  return std::get<alert_rule>(std::move(parsed));
}

std::optional<std::string> rule_id(const route_request& req, const reply_fn& reply) {
  auto id = http::normalize_uuid(req.params.id);
  if (!id)
    reply(http::error_response(400, "invalid_rule_id",
                               "rule id '" + req.params.id + "' is not a UUID"));
  return id;
}

http::route make(const char* method, const char* pattern, const char* name,
                 http::route_handler h) {
  http::route r;
  r.method = method;
  r.pattern = pattern;
  r.name = name;
  r.scope = auth::scope::alerts;
  r.handler = std::move(h);
  return r;
}

void list(caf::event_based_actor* self, const env_ptr& env, route_request& req, reply_fn reply) {
  http::on_pool<std::vector<alert_rule>>(
      self, env, "alerts.list_rules", true,
      [hh = req.who.households](db::session& s) { return list_rules(s, hh); }, reply,
      [reply](std::vector<alert_rule> rules) { reply(json(200, render_rules(rules))); });
}

void create(caf::event_based_actor* self, const env_ptr& env, route_request& req,
            reply_fn reply) {
  auto rule = parse_body(env, req, reply);
  if (!rule)
    return;
  write_rule(self, env, "alerts.create_rule",
             [rule = *rule, hh = req.who.households](db::session& s) {
               auto w = create_rule(s, rule, hh);
               if (w.forbidden)
                 throw failure_error{scope_forbidden(rule)};
               if (w.scope_missing)
                 throw failure_error{scope_missing(rule)};
               if (w.receiver_missing)
                 throw failure_error{receiver_missing(rule.receiver_id)};
               return *w.stored;
             },
             201, std::move(reply));
}

void read(caf::event_based_actor* self, const env_ptr& env, route_request& req, reply_fn reply) {
  auto id = rule_id(req, reply);
  if (!id)
    return;
  http::on_pool<alert_rule>(
      self, env, "alerts.get_rule", true,
      [id = *id, hh = req.who.households](db::session& s) {
        auto r = get_rule(s, id, hh);
        if (!r)
          throw failure_error{rule_missing(id)};
        return *r;
      },
      reply, [reply](alert_rule r) { reply(json(200, render_rule(r))); });
}

void update(caf::event_based_actor* self, const env_ptr& env, route_request& req,
            reply_fn reply) {
  auto id = rule_id(req, reply);
  if (!id)
    return;
  // PUT replaces the whole definition (same validation as POST).
  auto rule = parse_body(env, req, reply);
  if (!rule)
    return;
  write_rule(self, env, "alerts.update_rule",
             [id = *id, rule = *rule, hh = req.who.households](db::session& s) {
               auto w = update_rule(s, id, rule, hh);
               if (w.rule_missing)
                 throw failure_error{rule_missing(id)};
               if (w.forbidden)
                 throw failure_error{scope_forbidden(rule)};
               if (w.scope_missing)
                 throw failure_error{scope_missing(rule)};
               if (w.receiver_missing)
                 throw failure_error{receiver_missing(rule.receiver_id)};
               return *w.stored;
             },
             200, std::move(reply));
}

void remove(caf::event_based_actor* self, const env_ptr& env, route_request& req,
            reply_fn reply) {
  auto id = rule_id(req, reply);
  if (!id)
    return;
  http::on_pool<bool>(
      self, env, "alerts.delete_rule", true,
      [id = *id, hh = req.who.households](db::session& s) {
        if (!delete_rule(s, id, hh))
          throw failure_error{rule_missing(id)};
        return true;
      },
      reply, [self, env, id = *id, reply](bool) {
        if (auto m = env->registry->get<alert_manager_actor>())
          self->send(m, rule_drop_atom::value, id);
        reply(json(204, ""));
      });
}

void events(caf::event_based_actor* self, const env_ptr& env, route_request& req,
            reply_fn reply) {
  auto& p = req.params;
  if (!p.bad_query.empty())
    return reply(http::error_response(400, "bad_query", p.bad_query));
  std::optional<std::string> rule;
  std::optional<std::int64_t> since;
  int limit = 100;
  for (auto& [k, v] : p.query) {
    if (k == "rule_id") {
      rule = http::normalize_uuid(v);
      if (!rule)
        return reply(
            http::error_response(400, "invalid_rule_id", "rule_id '" + v + "' is not a UUID"));
    } else if (k == "since") {
      since = parse_rfc3339(v);
      if (!since)
        return reply(http::error_response(400, "invalid_since",
                                          "since '" + v + "' is not an RFC 3339 timestamp"));
    } else if (k == "limit") {
      char* end = nullptr;
      long n = std::strtol(v.c_str(), &end, 10);
      if (v.empty() || *end != '\0' || n < 1 || n > 1000)
        return reply(http::error_response(400, "invalid_limit",
                                          "limit must be an integer from 1 to 1000"));
      limit = static_cast<int>(n);
    } else {
      return reply(http::error_response(400, "unknown_parameter",
                                        "unknown query parameter '" + k + "'"));
    }
  }
  http::on_pool<std::vector<event_row>>(
      self, env, "alerts.events", true,
      [rule, since, limit, hh = req.who.households](db::session& s) {
        return list_events(s, rule, since, limit, hh);
      },
      reply,
      [reply](std::vector<event_row> rows) { reply(json(200, render_events(rows))); });
}

void redeliver_event(caf::event_based_actor* self, const env_ptr& env, route_request& req,
                     reply_fn reply) {
  auto id = http::normalize_uuid(req.params.id);
  if (!id)
    return reply(http::error_response(400, "invalid_alert_id",
                                      "alert id '" + req.params.id + "' is not a UUID"));
  http::on_pool<bool>(
      self, env, "alerts.redeliver", false,
      [id = *id, hh = req.who.households](db::session& s) {
        failure f;
        switch (redeliver(s, id, hh)) {
          case redeliver_result::queued: return true;
          case redeliver_result::missing:
            f.code = errc::not_found;
            f.slug = "event_not_found";
            f.message = "no notification " + id;
            break;
          case redeliver_result::not_failed:
            f.code = errc::conflict;
            f.slug = "not_failed";
            f.message = "notification " + id + " did not fail (only failed ones are redelivered)";
            break;
        }
        throw failure_error{f};
      },
      reply, [self, env, id = *id, reply](bool) {
        if (auto n = env->registry->get<notifier_actor>())
          self->send(n, nudge_atom::value);
        reply(json(202, "{\"alert_id\":\"" + id + "\",\"delivery\":\"pending\"}"));
      });
}

// --- receivers

rule_limits limits_of(const env_ptr& env) {
  const auto& s = env->settings;
  return rule_limits{s.alerts_allowed_hosts, s.alerts_allow_private_targets,
                     s.http_json_max_depth};
}

std::optional<alert_receiver> parse_receiver_body(const env_ptr& env, const route_request& req,
                                                  const reply_fn& reply) {
  auto parsed = parse_receiver(req.raw.body, limits_of(env));
  if (auto* e = std::get_if<rule_error>(&parsed)) {
    reply(http::error_response(400, e->code, e->message));
    return std::nullopt;
  }
  return std::get<alert_receiver>(std::move(parsed));
}

std::optional<std::string> receiver_id(const route_request& req, const reply_fn& reply) {
  auto id = http::normalize_uuid(req.params.id);
  if (!id)
    reply(http::error_response(400, "invalid_receiver_id",
                               "receiver id '" + req.params.id + "' is not a UUID"));
  return id;
}

void receivers_list(caf::event_based_actor* self, const env_ptr& env, route_request& req,
                    reply_fn reply) {
  http::on_pool<std::vector<alert_receiver>>(
      self, env, "alerts.list_receivers", true,
      [hh = req.who.households](db::session& s) { return list_receivers(s, hh); }, reply,
      [reply](std::vector<alert_receiver> rs) { reply(json(200, render_receivers(rs))); });
}

void receivers_create(caf::event_based_actor* self, const env_ptr& env, route_request& req,
                      reply_fn reply) {
  auto r = parse_receiver_body(env, req, reply);
  if (!r)
    return;
  http::on_pool<alert_receiver>(
      self, env, "alerts.create_receiver", false,
      [r = *r, hh = req.who.households](db::session& s) { return create_receiver(s, r, hh); },
      reply, [reply](alert_receiver stored) { reply(json(201, render_receiver(stored))); });
}

void receivers_read(caf::event_based_actor* self, const env_ptr& env, route_request& req,
                    reply_fn reply) {
  auto id = receiver_id(req, reply);
  if (!id)
    return;
  http::on_pool<alert_receiver>(
      self, env, "alerts.get_receiver", true,
      [id = *id, hh = req.who.households](db::session& s) {
        auto r = get_receiver(s, id, hh);
        if (!r)
          throw failure_error{receiver_missing(id)};
        return *r;
      },
      reply, [reply](alert_receiver r) { reply(json(200, render_receiver(r))); });
}

void receivers_update(caf::event_based_actor* self, const env_ptr& env, route_request& req,
                      reply_fn reply) {
  auto id = receiver_id(req, reply);
  if (!id)
    return;
  auto r = parse_receiver_body(env, req, reply);
  if (!r)
    return;
  http::on_pool<alert_receiver>(
      self, env, "alerts.update_receiver", false,
      [id = *id, r = *r, hh = req.who.households](db::session& s) {
        auto stored = update_receiver(s, id, r, hh);
        if (!stored)
          throw failure_error{receiver_missing(id)};
        return *stored;
      },
      reply, [reply](alert_receiver stored) { reply(json(200, render_receiver(stored))); });
}

void receivers_remove(caf::event_based_actor* self, const env_ptr& env, route_request& req,
                      reply_fn reply) {
  auto id = receiver_id(req, reply);
  if (!id)
    return;
  http::on_pool<bool>(
      self, env, "alerts.delete_receiver", true,
      [id = *id, hh = req.who.households](db::session& s) {
        switch (delete_receiver(s, id, hh)) {
          case receiver_delete::missing: throw failure_error{receiver_missing(id)};
          case receiver_delete::in_use: {
            failure f;
            f.code = errc::conflict;
            f.slug = "receiver_in_use";
            f.message = "rules still send to receiver " + id + "; change or delete them first";
            throw failure_error{f};
          }
          case receiver_delete::deleted: break;
        }
        return true;
      },
      reply, [reply](bool) { reply(json(204, "")); });
}

// --- silences

failure silence_missing(const std::string& id) {
  failure f;
  f.code = errc::not_found;
  f.slug = "silence_not_found";
  f.message = "no silence " + id;
  return f;
}

std::optional<std::string> silence_id(const route_request& req, const reply_fn& reply) {
  auto id = http::normalize_uuid(req.params.id);
  if (!id)
    reply(http::error_response(400, "invalid_silence_id",
                               "silence id '" + req.params.id + "' is not a UUID"));
  return id;
}

void silences_list(caf::event_based_actor* self, const env_ptr& env, route_request& req,
                   reply_fn reply) {
  http::on_pool<std::vector<alert_silence>>(
      self, env, "alerts.list_silences", true,
      [hh = req.who.households](db::session& s) { return list_silences(s, hh); }, reply,
      [reply](std::vector<alert_silence> ss) { reply(json(200, render_silences(ss))); });
}

void silences_create(caf::event_based_actor* self, const env_ptr& env, route_request& req,
                     reply_fn reply) {
  auto parsed = parse_silence(req.raw.body, now_micros(), env->settings.http_json_max_depth);
  if (auto* e = std::get_if<rule_error>(&parsed))
    return reply(http::error_response(400, e->code, e->message));
  auto si = std::get<alert_silence>(std::move(parsed));
  // A restricted token silences only inside its households: it must say which one.
  if (req.who.restricted()) {
    auto it = si.matchers.find("household_id");
    if (it == si.matchers.end() || !req.who.may_see(it->second))
      return reply(http::error_response(
          403, "forbidden",
          "this token may only silence alerts of its own households: add a household_id "
          "matcher naming one of them"));
  }
  http::on_pool<alert_silence>(
      self, env, "alerts.create_silence", false,
      [si, hh = req.who.households](db::session& s) { return create_silence(s, si, hh); }, reply,
      [reply](alert_silence stored) { reply(json(201, render_silence(stored))); });
}

void silences_read(caf::event_based_actor* self, const env_ptr& env, route_request& req,
                   reply_fn reply) {
  auto id = silence_id(req, reply);
  if (!id)
    return;
  http::on_pool<alert_silence>(
      self, env, "alerts.get_silence", true,
      [id = *id, hh = req.who.households](db::session& s) {
        auto si = get_silence(s, id, hh);
        if (!si)
          throw failure_error{silence_missing(id)};
        return *si;
      },
      reply, [reply](alert_silence si) { reply(json(200, render_silence(si))); });
}

void silences_remove(caf::event_based_actor* self, const env_ptr& env, route_request& req,
                     reply_fn reply) {
  auto id = silence_id(req, reply);
  if (!id)
    return;
  http::on_pool<bool>(
      self, env, "alerts.delete_silence", true,
      [id = *id, hh = req.who.households](db::session& s) {
        if (!delete_silence(s, id, hh))
          throw failure_error{silence_missing(id)};
        return true;
      },
      reply, [env, reply](bool) {
        // Alerts it silenced are released now, not at the janitor's next full pass.
        if (auto j = env->registry->get<alert_janitor_actor>())
          caf::anon_send(j, nudge_atom::value);
        reply(json(204, ""));
      });
}

// Binds a handler function to the feature's environment.
template <class F>
http::route_handler with_env(env_ptr env, F f) {
  return [env, f](caf::event_based_actor* self, route_request& req, reply_fn reply) {
    f(self, env, req, std::move(reply));
  };
}

} // namespace

void add_alert_routes(http::route_table& table, env_ptr env) {
  table.add(make("GET", "/alerts/rules", "alert_rules", with_env(env, list)));
  table.add(make("POST", "/alerts/rules", "alert_rules", with_env(env, create)));
  table.add(make("GET", "/alerts/rules/{id}", "alert_rule", with_env(env, read)));
  table.add(make("PUT", "/alerts/rules/{id}", "alert_rule", with_env(env, update)));
  table.add(make("DELETE", "/alerts/rules/{id}", "alert_rule", with_env(env, remove)));
  table.add(make("GET", "/alerts/events", "alert_events", with_env(env, events)));
  table.add(make("POST", "/alerts/events/{id}/redeliver", "alert_redeliver",
                 with_env(env, redeliver_event)));
  table.add(make("GET", "/alerts/receivers", "alert_receivers", with_env(env, receivers_list)));
  table.add(make("POST", "/alerts/receivers", "alert_receivers", with_env(env, receivers_create)));
  table.add(make("GET", "/alerts/receivers/{id}", "alert_receiver", with_env(env, receivers_read)));
  table.add(make("PUT", "/alerts/receivers/{id}", "alert_receiver",
                 with_env(env, receivers_update)));
  table.add(make("DELETE", "/alerts/receivers/{id}", "alert_receiver",
                 with_env(env, receivers_remove)));
  table.add(make("GET", "/alerts/silences", "alert_silences", with_env(env, silences_list)));
  table.add(make("POST", "/alerts/silences", "alert_silences", with_env(env, silences_create)));
  table.add(make("GET", "/alerts/silences/{id}", "alert_silence", with_env(env, silences_read)));
  table.add(make("DELETE", "/alerts/silences/{id}", "alert_silence",
                 with_env(env, silences_remove)));
}

} // namespace joule::rules
