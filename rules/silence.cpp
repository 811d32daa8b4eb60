#include "rules/silence.hpp"

#include "http/json_fields.hpp"

#include <cctype>

#include <rapidjson/document.h>

#include "core/timefmt.hpp"
#include "http/json_parse.hpp"
#include "http/router.hpp"

namespace joule::rules {
namespace {

using http::json::writer;

rule_error bad(const std::string& field, const std::string& message) {
  return {"invalid_" + field, field, message};
}

bool id_key(const std::string& k) {
  return k == "rule_id" || k == "scope_id" || k == "household_id";
}

bool label_key(const std::string& k) {
  if (k.empty() || k.size() > 128 || k.rfind("__", 0) == 0)
    return false;
  for (std::size_t i = 0; i < k.size(); ++i) {
    auto c = static_cast<unsigned char>(k[i]);
    if (!(std::isalpha(c) || c == '_' || (i > 0 && std::isdigit(c))))
      return false;
  }
  return true;
}

void write_matchers(writer& w, const std::map<std::string, std::string>& m) {
  w.StartObject();
  for (auto& [k, v] : m)
    http::json::field(w, k.c_str(), v);
  w.EndObject();
}

void write_silence(writer& w, const alert_silence& s) {
  using namespace http::json;
  w.StartObject();
  field(w, "id", s.id);
  w.Key("matchers");
  write_matchers(w, s.matchers);
  time_field(w, "starts_at", s.starts_at);
  time_field(w, "ends_at", s.ends_at);
  field(w, "comment", s.comment);
  time_field(w, "created_at", s.created_at);
  w.EndObject();
}

} // namespace

std::variant<alert_silence, rule_error> parse_silence(const std::string& body, std::int64_t now,
                                                       int json_max_depth) {
  rapidjson::Document doc;
  auto known = [](const std::string& k) {
    return k == "matchers" || k == "starts_at" || k == "ends_at" || k == "comment" || k == "id" ||
           k == "created_at";
  };
  if (auto err = parse_object_body(body, json_max_depth, known, doc))
    return *err;
  alert_silence s;
  auto m = doc.FindMember("matchers");
  if (m == doc.MemberEnd() || !m->value.IsObject() || m->value.MemberCount() == 0 ||
      m->value.MemberCount() > 32)
    return bad("matchers", "matchers must be a non-empty object (at most 32) of exact matches "
                           "on rule_id, scope_id, household_id or rule labels");
  for (auto it = m->value.MemberBegin(); it != m->value.MemberEnd(); ++it) {
    std::string k(it->name.GetString(), it->name.GetStringLength());
    if (!it->value.IsString() || it->value.GetStringLength() > 256)
      return bad("matchers", "matcher '" + k + "' must be a string of at most 256 bytes");
    std::string v(it->value.GetString(), it->value.GetStringLength());
    if (id_key(k)) {
      auto id = http::normalize_uuid(v);
      if (!id)
        return bad("matchers", "matcher '" + k + "' must be a UUID");
      v = *id;
    } else if (!label_key(k)) {
      return bad("matchers", "matcher '" + k + "' is neither rule_id, scope_id, household_id "
                                               "nor a label name");
    }
    s.matchers[k] = v;
  }
  s.starts_at = now;
  if (auto it = doc.FindMember("starts_at"); it != doc.MemberEnd() && !it->value.IsNull()) {
    auto t = it->value.IsString() ? parse_rfc3339(it->value.GetString()) : std::nullopt;
    if (!t)
      return bad("starts_at", "starts_at must be an RFC 3339 timestamp");
    s.starts_at = *t;
  }
  auto ends = doc.FindMember("ends_at");
  auto t = ends != doc.MemberEnd() && ends->value.IsString() ? parse_rfc3339(ends->value.GetString())
                                                              : std::nullopt;
  if (!t)
    return bad("ends_at", "ends_at must be an RFC 3339 timestamp");
  if (*t <= s.starts_at || *t <= now)
    return bad("ends_at", "ends_at must lie after starts_at and in the future");
  s.ends_at = *t;
  if (auto it = doc.FindMember("comment"); it != doc.MemberEnd() && !it->value.IsNull()) {
    if (!it->value.IsString() || it->value.GetStringLength() > 1000)
      return bad("comment", "comment must be a string of at most 1000 bytes");
    s.comment.assign(it->value.GetString(), it->value.GetStringLength());
  }
  return s;
}

std::string matchers_json(const std::map<std::string, std::string>& m) {
  return http::json::render(m, write_matchers);
}

std::string render_silence(const alert_silence& s) { return http::json::render(s, write_silence); }

std::string render_silences(const std::vector<alert_silence>& ss) {
  return http::json::render_list("silences", ss, write_silence);
}

} // namespace joule::rules
