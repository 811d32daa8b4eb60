#include "rules/payload.hpp"

#include "http/json_fields.hpp"
#include "rules/alert_metrics.hpp"

#include <cmath>

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
