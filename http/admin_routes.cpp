#include "http/admin_routes.hpp"

#include <algorithm>
#include <chrono>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "core/log.hpp"
#include "core/timefmt.hpp"
#include "db/tokens.hpp"
#include "http/errors.hpp"
#include "http/pool_job.hpp"
#include "http/json_parse.hpp"

namespace joule::http {
namespace {

using env_ptr = std::shared_ptr<const route_env>;
using writer = rapidjson::Writer<rapidjson::StringBuffer>;

api_error bad(const char* code, std::string message) { return {400, code, std::move(message)}; }

void time_or_null(writer& w, const char* key, const std::optional<std::int64_t>& t) {
  w.Key(key);
  if (t)
    w.String(format_rfc3339(*t));
  else
    w.Null();
}

// The token's public attributes; `secret` only in the answer that created it.
void render_token(writer& w, const db::token_record& t, const std::string* secret) {
  w.StartObject();
  w.Key("id");
  w.String(t.id);
  if (secret) {
    w.Key("token");
    w.String(*secret);
  }
  w.Key("name");
  w.String(t.name);
  w.Key("scopes");
  w.StartArray();
  for (auto& s : auth::scope_names(t.scopes))
    w.String(s);
  w.EndArray();
  w.Key("households");
  w.StartArray();
  for (auto& h : t.households)
    w.String(h);
  w.EndArray();
  time_or_null(w, "created_at", t.created_at);
  time_or_null(w, "expires_at", t.expires_at);
  time_or_null(w, "revoked_at", t.revoked_at);
  time_or_null(w, "last_used_at", t.last_used_at);
  w.EndObject();
}

response json(int status, std::string body) {
  response r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

std::string caller(const auth::identity& who) {
  return who.token_id.empty() ? std::string("anonymous (auth.required = false)")
                              : "token " + who.token_id;
}

void create(caf::event_based_actor* self, const env_ptr& env, route_request& req,
            reply_fn reply) {
  auto parsed = parse_token_request(req.raw.body, env->settings.http_json_max_depth);
  if (auto* e = std::get_if<api_error>(&parsed))
    return reply(error_response(*e));
  auto spec = std::get<token_request>(std::move(parsed));
  // A restricted admin cannot mint a token that sees more than it does.
  if (req.who.restricted() &&
      (spec.households.empty() ||
       !std::includes(req.who.households.begin(), req.who.households.end(),
                      spec.households.begin(), spec.households.end())))
    return reply(error_response(403, "forbidden",
                                "a household-restricted token may only create tokens "
                                "restricted to its own households"));
  db::token_spec ts;
  ts.scopes = spec.scopes;
  ts.households = spec.households;
  ts.expires_in_us = spec.expires_in_us;
  ts.name = spec.name;
  on_pool<db::created_token>(
      self, env, "admin.create_token", false,
      [ts](db::session& s) { return db::create_token(s, ts); }, reply,
      [reply, by = caller(req.who)](db::created_token t) {
        log(log_level::info, "auth", "token " + t.record.id + " created by " + by);
        rapidjson::StringBuffer buf;
        writer w{buf};
        render_token(w, t.record, &t.secret);
        reply(json(201, buf.GetString()));
      });
}

void list(caf::event_based_actor* self, const env_ptr& env, route_request& req, reply_fn reply) {
  on_pool<std::vector<db::token_record>>(
      self, env, "admin.list_tokens", true,
      [within = req.who.households](db::session& s) { return db::list_tokens(s, within); },
      reply, [reply](std::vector<db::token_record> tokens) {
        rapidjson::StringBuffer buf;
        writer w{buf};
        w.StartObject();
        w.Key("tokens");
        w.StartArray();
        for (auto& t : tokens)
          render_token(w, t, nullptr);
        w.EndArray();
        w.EndObject();
        reply(json(200, buf.GetString()));
      });
}

void revoke(caf::event_based_actor* self, const env_ptr& env, route_request& req,
            reply_fn reply) {
  auto id = normalize_uuid(req.params.id);
  if (!id)
    return reply(error_response(400, "invalid_token_id",
                                "token id '" + req.params.id + "' is not a UUID"));
  on_pool<db::revoke_outcome>(
      self, env, "admin.revoke_token", true,
      [id = *id, within = req.who.households](db::session& s) {
        return db::revoke_token(s, id, within);
      },
      reply, [self, env, id = *id, reply, by = caller(req.who)](db::revoke_outcome o) {
        if (o == db::revoke_outcome::unknown)
          return reply(error_response(404, "token_not_found", "no token " + id));
        log(log_level::info, "auth", "token " + id + " revoked by " + by);
        // This instance forgets it before answering; others within auth.refresh_interval.
        auto auth = env->registry->get<auth_actor>();
        if (!auth)
          return reply(json(204, ""));
        self->request(auth, std::chrono::seconds(2), revoke_atom::value, id)
            .then([reply](bool) { reply(json(204, "")); },
                  [reply](caf::error&) { reply(json(204, "")); });
      });
}

route make(const char* method, const char* pattern, const char* name, env_ptr env,
           void (*fn)(caf::event_based_actor*, const env_ptr&, route_request&, reply_fn)) {
  route r;
  r.method = method;
  r.pattern = pattern;
  r.name = name;
  r.scope = auth::scope::admin;
  r.handler = [env, fn](caf::event_based_actor* self, route_request& req, reply_fn reply) {
    fn(self, env, req, std::move(reply));
  };
  return r;
}

} // namespace

std::variant<token_request, api_error> parse_token_request(const std::string& body,
                                                          int max_depth) {
  rapidjson::Document d;
  if (auto err = parse_json(body, d, max_depth))
    return bad("invalid_json", err->message);
  if (!d.IsObject())
    return bad("invalid_json", "body must be a JSON object");
  token_request out;
  bool have_scopes = false;
  for (auto& m : d.GetObject()) {
    std::string key = m.name.GetString();
    auto& v = m.value;
    if (key == "scopes") {
      if (!v.IsArray() || v.Empty())
        return bad("invalid_scopes", "scopes must be a non-empty array of read, ingest, "
                                     "alerts, admin");
      for (auto& s : v.GetArray()) {
        auto sc = s.IsString() ? auth::scope_from(s.GetString()) : std::nullopt;
        if (!sc)
          return bad("invalid_scopes", "scopes may contain only read, ingest, alerts, admin");
        out.scopes |= auth::bit(*sc);
      }
      have_scopes = true;
    } else if (key == "households") {
      if (!v.IsArray())
        return bad("invalid_households", "households must be an array of UUIDs");
      for (auto& h : v.GetArray()) {
        auto id = h.IsString() ? normalize_uuid(h.GetString()) : std::nullopt;
        if (!id)
          return bad("invalid_households", "households must be an array of UUIDs");
        out.households.push_back(*id);
      }
      if (out.households.size() > 1000)
        return bad("invalid_households", "at most 1000 households per token");
    } else if (key == "expires_in") {
      if (v.IsNull())
        continue;
      auto dur = v.IsString() ? config::parse_duration(v.GetString()) : std::nullopt;
      if (!dur || dur->count() < 1000 || *dur > std::chrono::hours(24 * 3650))
        return bad("invalid_expires_in",
                   "expires_in must be a duration such as 3600s, 12h or 30d (1s to 3650d)");
      out.expires_in_us = dur->count() * 1000;
    } else if (key == "name") {
      if (!v.IsString() || v.GetStringLength() > 200)
        return bad("invalid_name", "name must be a string of at most 200 characters");
      out.name = v.GetString();
    } else {
      return bad("unknown_field", "unknown field '" + key + "'");
    }
  }
  if (!have_scopes)
    return bad("invalid_scopes", "scopes is required (read, ingest, alerts, admin)");
  std::sort(out.households.begin(), out.households.end());
  out.households.erase(std::unique(out.households.begin(), out.households.end()),
                       out.households.end());
  return out;
}

void add_admin_routes(route_table& table, std::shared_ptr<const route_env> env) {
  table.add(make("POST", "/admin/tokens", "admin_tokens", env, create));
  table.add(make("GET", "/admin/tokens", "admin_tokens", env, list));
  table.add(make("DELETE", "/admin/tokens/{id}", "admin_token", env, revoke));
}

} // namespace joule::http
