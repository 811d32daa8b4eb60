#include "rules/rule.hpp"

#include <cctype>
#include <cmath>
#include <cstdio>
#include <random>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "core/timefmt.hpp"
#include "http/json_numbers.hpp"
#include "http/router.hpp"

namespace joule::rules {
namespace {

using writer = rapidjson::Writer<rapidjson::StringBuffer>;

rule_error bad(const std::string& field, const std::string& message) {
  return {"invalid_" + field, field, message};
}

std::string lower(std::string s) {
  for (auto& c : s)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Fields a client may send back unchanged from a GET (PUT of a fetched rule): ignored.
bool read_only_field(const std::string& k) {
  return k == "id" || k == "created_at" || k == "updated_at" || k == "version" ||
         k == "webhook_secret_set";
}

bool known_field(const std::string& k) {
  static const char* fields[] = {"scope",        "scope_id",      "metric",      "window",
                                 "op",           "value",         "cooldown_sec", "for_buckets",
                                 "recover_value", "webhook_url",  "webhook_secret", "enabled"};
  for (auto* f : fields)
    if (k == f)
      return true;
  return read_only_field(k);
}

template <class Map>
std::optional<std::string> string_field(const Map& obj, const char* name) {
  auto it = obj.FindMember(name);
  if (it == obj.MemberEnd() || !it->value.IsString())
    return std::nullopt;
  return std::string(it->value.GetString(), it->value.GetStringLength());
}

// Integers arrive as JSON numbers; 300.0 is accepted, 300.5 is not.
std::optional<std::int64_t> integer_of(const rapidjson::Value& v) {
  if (v.IsInt64())
    return v.GetInt64();
  if (v.IsDouble()) {
    double d = v.GetDouble();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9e15)
      return static_cast<std::int64_t>(d);
  }
  return std::nullopt;
}

void key_str(writer& w, const char* k, const std::string& v) {
  w.Key(k);
  w.String(v);
}

void write_rule(writer& w, const alert_rule& r) {
  w.StartObject();
  key_str(w, "id", r.id);
  key_str(w, "scope", to_string(r.scope));
  key_str(w, "scope_id", r.scope_id);
  key_str(w, "metric", to_string(r.metric));
  key_str(w, "window", window_name(r.window_us));
  key_str(w, "op", to_string(r.op));
  w.Key("value");
  w.Double(r.threshold);
  w.Key("cooldown_sec");
  w.Int64(r.cooldown_sec);
  w.Key("for_buckets");
  w.Int(r.for_buckets);
  w.Key("recover_value");
  if (r.recover_value)
    w.Double(*r.recover_value);
  else
    w.Null();
  key_str(w, "webhook_url", r.webhook_url);
  w.Key("webhook_secret_set");
  w.Bool(!r.webhook_secret.empty());
  w.Key("enabled");
  w.Bool(r.enabled);
  w.Key("version");
  w.Int64(r.version);
  key_str(w, "created_at", format_rfc3339(r.created_at));
  key_str(w, "updated_at", format_rfc3339(r.updated_at));
  w.EndObject();
}

} // namespace

const char* to_string(scope_kind s) { return s == scope_kind::device ? "device" : "household"; }

const char* to_string(metric_kind m) {
  switch (m) {
    case metric_kind::power_w_avg: return "power_w_avg";
    case metric_kind::power_w_max: return "power_w_max";
    case metric_kind::energy_wh_sum: return "energy_wh_sum";
  }
  return "power_w_avg";
}

const char* to_string(compare_op o) {
  switch (o) {
    case compare_op::gt: return ">";
    case compare_op::ge: return ">=";
    case compare_op::lt: return "<";
    case compare_op::le: return "<=";
  }
  return ">";
}

std::string window_name(std::int64_t width_us) {
  return std::to_string(width_us / minute_us) + "m";
}

std::string webhook_target::destination() const {
  return std::string(tls ? "https://" : "http://") + host + ":" + std::to_string(port);
}

std::optional<webhook_target> parse_webhook_url(const std::string& url) {
  webhook_target t;
  std::string rest;
  auto l = lower(url.substr(0, 8));
  if (l.rfind("http://", 0) == 0) {
    rest = url.substr(7);
    t.port = 80;
  } else if (l.rfind("https://", 0) == 0) {
    rest = url.substr(8);
    t.tls = true;
    t.port = 443;
  } else {
    return std::nullopt;
  }
  if (url.find('#') != std::string::npos)
    return std::nullopt;
  for (char c : url)
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f)
      return std::nullopt;  // no whitespace or control characters (header injection)
  auto slash = rest.find_first_of("/?");
  std::string authority = rest.substr(0, slash);
  t.target = slash == std::string::npos ? "/" : rest.substr(slash);
  if (!t.target.empty() && t.target[0] == '?')
    t.target = "/" + t.target;
  if (authority.empty() || authority.find('@') != std::string::npos)
    return std::nullopt;
  std::string host;
  std::optional<std::string> port_text;
  if (authority[0] == '[') {  // IPv6 literal
    auto close = authority.find(']');
    if (close == std::string::npos)
      return std::nullopt;
    host = authority.substr(1, close - 1);
    auto after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':')
        return std::nullopt;
      port_text = after.substr(1);
    }
  } else {
    auto colon = authority.find(':');
    host = authority.substr(0, colon);
    if (colon != std::string::npos)
      port_text = authority.substr(colon + 1);
  }
  if (port_text) {
    if (port_text->empty() || port_text->size() > 5)
      return std::nullopt;
    for (char c : *port_text)
      if (!std::isdigit(static_cast<unsigned char>(c)))
        return std::nullopt;
    auto n = std::stoi(*port_text);
    if (n < 1 || n > 65535)
      return std::nullopt;
    t.port = static_cast<std::uint16_t>(n);
  }
  if (host.empty())
    return std::nullopt;
  t.host = lower(host);
  return t;
}

bool host_allowed(const std::string& host, const std::string& allowed_hosts) {
  std::string h = lower(host);
  bool any_entry = false;
  std::size_t i = 0;
  while (i <= allowed_hosts.size()) {
    auto j = allowed_hosts.find(',', i);
    if (j == std::string::npos)
      j = allowed_hosts.size();
    std::string e = allowed_hosts.substr(i, j - i);
    while (!e.empty() && std::isspace(static_cast<unsigned char>(e.front())))
      e.erase(e.begin());
    while (!e.empty() && std::isspace(static_cast<unsigned char>(e.back())))
      e.pop_back();
    e = lower(e);
    if (!e.empty()) {
      any_entry = true;
      if (e == h)
        return true;
      if (e[0] == '.' && h.size() > e.size() && h.compare(h.size() - e.size(), e.size(), e) == 0)
        return true;
    }
    i = j + 1;
  }
  return !any_entry;
}

std::variant<alert_rule, rule_error> parse_rule(const std::string& body,
                                                const std::string& allowed_hosts) {
  rapidjson::Document doc;
  // Exact numbers: RapidJSON's default conversion may miss the nearest double by an ulp, and a
  // rule fetched and PUT back would then change its value.
  if (http::parse_exact(body, doc).IsError() || !doc.IsObject())
    return rule_error{"invalid_json", "body", "the body must be a JSON object"};
  for (auto it = doc.MemberBegin(); it != doc.MemberEnd(); ++it) {
    std::string k(it->name.GetString(), it->name.GetStringLength());
    if (!known_field(k))
      return rule_error{"unknown_field", k, "unknown field '" + k + "'"};
  }
  alert_rule r;

  auto scope = string_field(doc, "scope");
  if (!scope || (*scope != "device" && *scope != "household"))
    return bad("scope", "scope must be \"device\" or \"household\"");
  r.scope = *scope == "device" ? scope_kind::device : scope_kind::household;

  auto sid = string_field(doc, "scope_id");
  auto norm = sid ? http::normalize_uuid(*sid) : std::nullopt;
  if (!norm)
    return bad("scope_id", "scope_id must be a UUID");
  r.scope_id = *norm;

  auto metric = string_field(doc, "metric");
  if (!metric)
    return bad("metric", "metric must be one of power_w_avg, power_w_max, energy_wh_sum");
  if (*metric == "power_w_avg")
    r.metric = metric_kind::power_w_avg;
  else if (*metric == "power_w_max")
    r.metric = metric_kind::power_w_max;
  else if (*metric == "energy_wh_sum")
    r.metric = metric_kind::energy_wh_sum;
  else
    return bad("metric", "metric must be one of power_w_avg, power_w_max, energy_wh_sum");
  // A household's power is the sum of its devices; the largest single-device reading is not
  // its maximum power, and the household rollup keeps no maximum. Rejecting beats guessing.
  if (r.scope == scope_kind::household && r.metric == metric_kind::power_w_max)
    return rule_error{"unsupported_metric", "metric",
                      "power_w_max is only available for device scope; use power_w_avg or "
                      "energy_wh_sum for households"};

  auto window = string_field(doc, "window");
  if (window && *window == "1m")
    r.window_us = minute_us;
  else if (window && *window == "5m")
    r.window_us = 5 * minute_us;
  else
    return bad("window", "window must be \"1m\" or \"5m\"");

  auto op = string_field(doc, "op");
  if (op && *op == ">")
    r.op = compare_op::gt;
  else if (op && *op == ">=")
    r.op = compare_op::ge;
  else if (op && *op == "<")
    r.op = compare_op::lt;
  else if (op && *op == "<=")
    r.op = compare_op::le;
  else
    return bad("op", "op must be one of >, >=, <, <=");

  auto value = doc.FindMember("value");
  if (value == doc.MemberEnd() || !value->value.IsNumber() ||
      !std::isfinite(value->value.GetDouble()))
    return bad("value", "value must be a finite number");
  r.threshold = value->value.GetDouble();

  if (auto it = doc.FindMember("cooldown_sec"); it != doc.MemberEnd()) {
    auto n = integer_of(it->value);
    if (!n || *n < 0 || *n > 7 * 86400)
      return bad("cooldown_sec", "cooldown_sec must be an integer between 0 and 604800");
    r.cooldown_sec = *n;
  }
  if (auto it = doc.FindMember("for_buckets"); it != doc.MemberEnd()) {
    auto n = integer_of(it->value);
    if (!n || *n < 1 || *n > 1000)
      return bad("for_buckets", "for_buckets must be an integer between 1 and 1000");
    r.for_buckets = static_cast<int>(*n);
  }
  if (auto it = doc.FindMember("recover_value"); it != doc.MemberEnd() && !it->value.IsNull()) {
    if (!it->value.IsNumber() || !std::isfinite(it->value.GetDouble()))
      return bad("recover_value", "recover_value must be a finite number or null");
    double rv = it->value.GetDouble();
    bool above = r.op == compare_op::gt || r.op == compare_op::ge;
    // Hysteresis only makes sense on the healthy side of the threshold.
    if (above ? rv > r.threshold : rv < r.threshold)
      return bad("recover_value", std::string("recover_value must be ") +
                                      (above ? "<=" : ">=") + " value for op " + to_string(r.op));
    r.recover_value = rv;
  }

  auto url = string_field(doc, "webhook_url");
  if (!url || url->size() > 2048)
    return bad("webhook_url", "webhook_url must be an http:// or https:// URL");
  auto target = parse_webhook_url(*url);
  if (!target)
    return bad("webhook_url", "webhook_url must be an http:// or https:// URL with a host");
  if (!host_allowed(target->host, allowed_hosts))
    return rule_error{"webhook_host_not_allowed", "webhook_url",
                      "webhook host '" + target->host + "' is not in alerts.allowed_hosts"};
  r.webhook_url = *url;

  auto secret = string_field(doc, "webhook_secret");
  if (!secret || secret->empty() || secret->size() > 512)
    return bad("webhook_secret", "webhook_secret must be a non-empty string (at most 512 bytes)");
  r.webhook_secret = *secret;

  if (auto it = doc.FindMember("enabled"); it != doc.MemberEnd()) {
    if (!it->value.IsBool())
      return bad("enabled", "enabled must be true or false");
    r.enabled = it->value.GetBool();
  }
  return r;
}

std::string render_rule(const alert_rule& r) {
  rapidjson::StringBuffer buf;
  writer w{buf};
  write_rule(w, r);
  return buf.GetString();
}

std::string render_rules(const std::vector<alert_rule>& rs) {
  rapidjson::StringBuffer buf;
  writer w{buf};
  w.StartObject();
  w.Key("rules");
  w.StartArray();
  for (auto& r : rs)
    write_rule(w, r);
  w.EndArray();
  w.EndObject();
  return buf.GetString();
}

std::string random_uuid() {
  thread_local std::mt19937_64 gen{std::random_device{}()};
  std::uint64_t hi = gen(), lo = gen();
  hi = (hi & 0xffffffffffff0fffULL) | 0x0000000000004000ULL;  // version 4
  lo = (lo & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;  // RFC 4122 variant
  char out[37];
  std::snprintf(out, sizeof out, "%08x-%04x-%04x-%04x-%012llx",
                static_cast<unsigned>(hi >> 32), static_cast<unsigned>((hi >> 16) & 0xffff),
                static_cast<unsigned>(hi & 0xffff), static_cast<unsigned>(lo >> 48),
                static_cast<unsigned long long>(lo & 0xffffffffffffULL));
  return out;
}

} // namespace joule::rules
