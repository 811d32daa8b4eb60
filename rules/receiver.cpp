#include "rules/receiver.hpp"

#include "http/json_fields.hpp"

#include <algorithm>
#include <cmath>

#include <rapidjson/document.h>

#include "http/json_parse.hpp"

namespace joule::rules {
namespace {

using http::json::writer;

const char* group_fields[] = {"household_id", "rule_id", "scope_id"};

rule_error bad(const std::string& field, const std::string& message) {
  return {"invalid_" + field, field, message};
}

bool known_field(const std::string& k) {
  for (auto* f : {"name", "kind", "url", "secret", "group_by", "group_wait_sec",
                  "group_interval_sec", "id", "created_at", "updated_at", "secret_set"})
    if (k == f)
      return true;
  return false;
}

std::optional<std::int64_t> seconds(const rapidjson::Value& v, std::int64_t max) {
  auto n = http::json_integer(v);
  if (!n || *n < 0 || *n > max)
    return std::nullopt;
  return n;
}

void write_receiver(writer& w, const alert_receiver& r) {
  using namespace http::json;
  w.StartObject();
  field(w, "id", r.id);
  field(w, "name", r.name);
  field(w, "kind", to_string(r.kind));
  field(w, "url", r.url);
  field(w, "secret_set", !r.secret.empty());
  w.Key("group_by");
  w.StartArray();
  for (auto& g : r.group_by)
    w.String(g.c_str());
  w.EndArray();
  field(w, "group_wait_sec", r.group_wait_sec);
  field(w, "group_interval_sec", r.group_interval_sec);
  time_field(w, "created_at", r.created_at);
  time_field(w, "updated_at", r.updated_at);
  w.EndObject();
}

} // namespace

const char* to_string(receiver_kind k) {
  return k == receiver_kind::webhook ? "webhook" : "alertmanager";
}

std::variant<alert_receiver, rule_error> parse_receiver(const std::string& body,
                                                         const rule_limits& limits) {
  rapidjson::Document doc;
  if (auto err = parse_object_body(body, limits.json_max_depth, known_field, doc))
    return *err;
  alert_receiver r;
  auto name = doc.FindMember("name");
  if (name == doc.MemberEnd() || !name->value.IsString() || name->value.GetStringLength() == 0 ||
      name->value.GetStringLength() > 200)
    return bad("name", "name must be a non-empty string of at most 200 bytes");
  r.name.assign(name->value.GetString(), name->value.GetStringLength());

  auto kind = doc.FindMember("kind");
  std::string k = kind != doc.MemberEnd() && kind->value.IsString() ? kind->value.GetString() : "";
  if (k == "webhook")
    r.kind = receiver_kind::webhook;
  else if (k == "alertmanager")
    r.kind = receiver_kind::alertmanager;
  else
    return bad("kind", "kind must be \"webhook\" or \"alertmanager\"");

  auto url = doc.FindMember("url");
  if (url == doc.MemberEnd() || !url->value.IsString() || url->value.GetStringLength() > 2048)
    return bad("url", "url must be an http:// or https:// URL");
  r.url.assign(url->value.GetString(), url->value.GetStringLength());
  auto target = parse_webhook_url(r.url);
  if (!target)
    return bad("url", "url must be an http:// or https:// URL with a host");
  if (auto e = check_webhook_target(*target, limits)) {
    e->field = "url";
    return *e;
  }

  auto secret = doc.FindMember("secret");
  if (r.kind == receiver_kind::webhook) {
    if (secret == doc.MemberEnd() || !secret->value.IsString() ||
        secret->value.GetStringLength() == 0 || secret->value.GetStringLength() > 512)
      return bad("secret", "a webhook receiver needs a secret (non-empty, at most 512 bytes)");
    r.secret.assign(secret->value.GetString(), secret->value.GetStringLength());
  } else if (secret != doc.MemberEnd() && !secret->value.IsNull()) {
    return bad("secret", "an alertmanager receiver takes no secret (its API is not signed)");
  }

  if (auto it = doc.FindMember("group_by"); it != doc.MemberEnd()) {
    if (!it->value.IsArray())
      return bad("group_by", "group_by must be an array of household_id, rule_id, scope_id");
    std::vector<std::string> wanted;
    for (auto& v : it->value.GetArray()) {
      std::string g = v.IsString() ? v.GetString() : "";
      if (std::find(std::begin(group_fields), std::end(group_fields), g) == std::end(group_fields))
        return bad("group_by", "group_by must be an array of household_id, rule_id, scope_id");
      wanted.push_back(g);
    }
    for (auto* f : group_fields)  // canonical order, no duplicates: one key per grouping
      if (std::find(wanted.begin(), wanted.end(), f) != wanted.end())
        r.group_by.push_back(f);
  }
  if (auto it = doc.FindMember("group_wait_sec"); it != doc.MemberEnd()) {
    auto n = seconds(it->value, 3600);
    if (!n)
      return bad("group_wait_sec", "group_wait_sec must be an integer between 0 and 3600");
    r.group_wait_sec = *n;
  }
  if (auto it = doc.FindMember("group_interval_sec"); it != doc.MemberEnd()) {
    auto n = seconds(it->value, 86400);
    if (!n)
      return bad("group_interval_sec", "group_interval_sec must be an integer between 0 and 86400");
    r.group_interval_sec = *n;
  }
  return r;
}

std::string render_receiver(const alert_receiver& r) {
  return http::json::render(r, write_receiver);
}

std::string render_receivers(const std::vector<alert_receiver>& rs) {
  return http::json::render_list("receivers", rs, write_receiver);
}

std::string group_key(const std::string& receiver_id, const std::vector<std::string>& group_by,
                      const group_labels& labels) {
  std::string out = receiver_id + "{";
  bool first = true;
  for (auto& g : group_by) {
    const std::string& v = g == "household_id" ? labels.household_id
                           : g == "rule_id"    ? labels.rule_id
                                               : labels.scope_id;
    out += (first ? "" : ",") + g + "=\"" + v + "\"";
    first = false;
  }
  return out + "}";
}

} // namespace joule::rules
