#include "rules/payload.hpp"

#include "http/json_fields.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>


#include "core/timefmt.hpp"

namespace joule::rules {

notification make_notification(const alert_rule& rule, transition event,
                               const std::string& alert_id, const std::string& incident_id,
                               std::int64_t bucket_start, double observed, std::int64_t fired_at,
                               std::int64_t at) {
  notification n;
  n.alert_id = alert_id;
  n.incident_id = incident_id;
  n.rule_id = rule.id;
  n.status = event == transition::resolved ? "resolved" : "firing";
  n.bucket = bucket_start;
  n.observed = observed;
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
  field(w, "window", window_name(rule.window_us));
  field(w, "op", to_string(rule.op));
  field(w, "threshold", rule.threshold);
  field(w, "recover_value", rule.recover_value);
  field(w, "observed", observed);
  time_field(w, "bucket", bucket_start);
  time_field(w, "bucket_end", bucket_start + rule.window_us);
  time_field(w, "fired_at", fired_at);
  time_field(w, "resolved_at",
             event == transition::resolved ? std::optional<std::int64_t>(at) : std::nullopt);
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
