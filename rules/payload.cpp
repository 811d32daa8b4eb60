#include "rules/payload.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

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

  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w{buf};
  auto str = [&w](const char* k, const std::string& v) {
    w.Key(k);
    w.String(v);
  };
  w.StartObject();
  str("alert_id", n.alert_id);
  str("incident_id", n.incident_id);
  str("rule_id", n.rule_id);
  str("status", n.status);
  str("scope", to_string(rule.scope));
  str("scope_id", rule.scope_id);
  str("metric", to_string(rule.metric));
  str("window", window_name(rule.window_us));
  str("op", to_string(rule.op));
  w.Key("threshold");
  w.Double(rule.threshold);
  w.Key("recover_value");
  if (rule.recover_value)
    w.Double(*rule.recover_value);
  else
    w.Null();
  w.Key("observed");
  w.Double(observed);
  str("bucket", format_rfc3339(bucket_start));
  str("bucket_end", format_rfc3339(bucket_start + rule.window_us));
  str("fired_at", format_rfc3339(fired_at));
  w.Key("resolved_at");
  if (event == transition::resolved)
    w.String(format_rfc3339(at));
  else
    w.Null();
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
