#include "rules/payload.hpp"

#include "http/json_fields.hpp"
#include "rules/alert_metrics.hpp"

#include <cmath>
#include <cstdio>
#include <map>

#include <rapidjson/document.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>


#include "core/timefmt.hpp"

namespace joule::rules {

notification make_notification(const alert_rule& rule, transition event,
                               const std::string& alert_id, const std::string& incident_id,
                               std::int64_t bucket_start, double observed, std::int64_t fired_at,
                               std::int64_t at, int repeat) {
  notification n;
  n.alert_id = alert_id;
  n.incident_id = incident_id;
  n.rule_id = rule.id;
  n.status = event == transition::resolved ? "resolved" : "firing";
  n.bucket = bucket_start;
  n.observed = observed;
  n.repeat = repeat;
  n.receiver_id = rule.receiver_id;
  n.scope_id = rule.scope_id;
  n.household_id = rule.household_id;
  n.labels = rule.labels;
  n.webhook_url = rule.webhook_url;
  n.webhook_secret = rule.webhook_secret;
  if (auto t = parse_webhook_url(rule.webhook_url))
    n.destination = t->destination();

  using namespace http::json;
  rapidjson::StringBuffer buf;
  writer w{buf};
  w.StartObject();
  field(w, "alert_id", n.alert_id);
  field(w, "incident_id", n.incident_id);
  field(w, "rule_id", n.rule_id);
  field(w, "status", n.status);
  field(w, "scope", to_string(rule.scope));
  field(w, "scope_id", rule.scope_id);
  text_or_null(w, "household_id", rule.household_id);
  field(w, "metric", to_string(rule.metric));
  const bool per_bucket = def_of(rule.metric).per_bucket;
  if (per_bucket) {
    field(w, "window", window_name(rule.window_us));
  } else {
    w.Key("window");
    w.Null();
  }
  field(w, "op", to_string(rule.op));
  field(w, "threshold", rule.threshold);
  field(w, "recover_value", rule.recover_value);
  if (std::isfinite(observed)) {
    field(w, "observed", observed);
  } else {
    w.Key("observed");
    w.Null();
  }
  time_field(w, "bucket", bucket_start);
  time_field(w, "bucket_end", per_bucket ? bucket_start + rule.window_us : at);
  time_field(w, "fired_at", fired_at);
  time_field(w, "resolved_at",
             event == transition::resolved ? std::optional<std::int64_t>(at) : std::nullopt);
  if (event == transition::fired)
    field(w, "repeat", repeat);
  text_or_null(w, "name", rule.name);
  w.Key("labels");
  w.StartObject();
  for (auto& [k, v] : rule.labels)
    field(w, k.c_str(), v);
  w.EndObject();
  w.EndObject();
  n.payload = buf.GetString();
  return n;
}

std::string group_body(const std::string& group_key, const std::vector<std::string>& payloads) {
  using namespace http::json;
  rapidjson::StringBuffer buf;
  writer w{buf};
  w.StartObject();
  field(w, "group_key", group_key);
  w.Key("alerts");
  w.StartArray();
  for (auto& p : payloads)
    w.RawValue(p.c_str(), p.size(), rapidjson::kObjectType);  // stored bodies are JSON objects
  w.EndArray();
  w.EndObject();
  return buf.GetString();
}

namespace {

std::string text_of(const rapidjson::Value& obj, const char* key) {
  auto it = obj.FindMember(key);
  if (it == obj.MemberEnd() || it->value.IsNull())
    return {};
  if (it->value.IsString())
    return it->value.GetString();
  if (it->value.IsNumber()) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.17g", it->value.GetDouble());
    return buf;
  }
  return {};
}

} // namespace

std::string alertmanager_body(const std::vector<std::string>& payloads) {
  using namespace http::json;
  // Newest notification per incident (payloads come oldest first).
  std::vector<rapidjson::Document> docs;
  std::map<std::string, std::size_t> by_incident;
  for (auto& p : payloads) {
    rapidjson::Document d;
    d.Parse(p.c_str(), p.size());
    if (d.HasParseError() || !d.IsObject())
      continue;
    auto incident = text_of(d, "incident_id");
    auto it = by_incident.find(incident);
    if (it != by_incident.end()) {
      docs[it->second] = std::move(d);
    } else {
      by_incident.emplace(incident, docs.size());
      docs.push_back(std::move(d));
    }
  }
  rapidjson::StringBuffer buf;
  writer w{buf};
  w.StartArray();
  for (auto& d : docs) {
    w.StartObject();
    w.Key("labels");
    w.StartObject();
    auto name = text_of(d, "name");
    field(w, "alertname", name.empty() ? "joule_" + text_of(d, "metric") : name);
    for (auto* k : {"rule_id", "scope", "scope_id", "household_id", "metric"})
      if (auto v = text_of(d, k); !v.empty())
        field(w, k, v);
    if (auto l = d.FindMember("labels"); l != d.MemberEnd() && l->value.IsObject())
      for (auto m = l->value.MemberBegin(); m != l->value.MemberEnd(); ++m)
        if (m->value.IsString())
          field(w, m->name.GetString(), std::string(m->value.GetString()));
    w.EndObject();
    w.Key("annotations");
    w.StartObject();
    auto observed = text_of(d, "observed");
    field(w, "observed", observed.empty() ? "no data" : observed);
    field(w, "threshold", text_of(d, "threshold"));
    field(w, "op", text_of(d, "op"));
    field(w, "summary", text_of(d, "metric") + " " + text_of(d, "op") + " " +
                            text_of(d, "threshold") + " on " + text_of(d, "scope") + " " +
                            text_of(d, "scope_id") +
                            (observed.empty() ? "" : " (observed " + observed + ")"));
    w.EndObject();
    field(w, "startsAt", text_of(d, "fired_at"));
    if (text_of(d, "status") == "resolved")
      field(w, "endsAt", text_of(d, "resolved_at"));
    w.EndObject();
  }
  w.EndArray();
  return buf.GetString();
}

std::string sign(const std::string& secret, const std::string& alert_id,
                 std::int64_t unix_seconds, const std::string& body) {
  std::string msg = alert_id + "." + std::to_string(unix_seconds) + "." + body;
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), mac, &len);
  static const char* hex = "0123456789abcdef";
  std::string out = "sha256=";
  for (unsigned i = 0; i < len; ++i) {
    out += hex[mac[i] >> 4];
    out += hex[mac[i] & 0xf];
  }
  return out;
}

} // namespace joule::rules
