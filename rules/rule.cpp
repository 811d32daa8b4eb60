#include "rules/rule.hpp"

#include "http/json_fields.hpp"
#include "rules/alert_metrics.hpp"

#include <cctype>
#include <cmath>
#include <cstdio>
#include <random>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "core/timefmt.hpp"
#include "http/json_parse.hpp"
#include "http/router.hpp"
#include "rules/target_policy.hpp"

namespace joule::rules {
namespace {

using http::json::writer;

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
         k == "webhook_secret_set" || k == "household_id";
}

bool known_field(const std::string& k) {
  static const char* fields[] = {"scope",         "scope_id",    "metric",         "window",
                                 "op",            "value",       "cooldown_sec",   "for_buckets",
                                 "recover_value", "webhook_url", "webhook_secret", "enabled",
                                 "no_data",       "repeat_interval_sec", "name",   "labels",
                                 "receiver_id"};
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

void write_rule(writer& w, const alert_rule& r) {
  using namespace http::json;
  w.StartObject();
  field(w, "id", r.id);
  field(w, "scope", to_string(r.scope));
  field(w, "scope_id", r.scope_id);
  field(w, "metric", to_string(r.metric));
  if (def_of(r.metric).per_bucket) {
    field(w, "window", window_name(r.window_us));
  } else {
    w.Key("window");
    w.Null();
  }
  field(w, "op", to_string(r.op));
  field(w, "value", r.threshold);
  field(w, "cooldown_sec", r.cooldown_sec);
  field(w, "for_buckets", r.for_buckets);
  field(w, "recover_value", r.recover_value);
  field(w, "no_data", to_string(r.no_data));
  field(w, "repeat_interval_sec", r.repeat_interval_sec);
  text_or_null(w, "name", r.name);
  w.Key("labels");
  w.StartObject();
  for (auto& [k, v] : r.labels)
    field(w, k.c_str(), v);
  w.EndObject();
  text_or_null(w, "receiver_id", r.receiver_id);
  text_or_null(w, "webhook_url", r.webhook_url);
  field(w, "webhook_secret_set", !r.webhook_secret.empty());
  text_or_null(w, "household_id", r.household_id);
  field(w, "enabled", r.enabled);
  field(w, "version", r.version);
  time_field(w, "created_at", r.created_at);
  time_field(w, "updated_at", r.updated_at);
  w.EndObject();
}

} // namespace

const char* to_string(scope_kind s) { return s == scope_kind::device ? "device" : "household"; }

const char* to_string(metric_kind m) { return def_of(m).name; }

const char* to_string(compare_op o) {
  switch (o) {
    case compare_op::gt: return ">";
    case compare_op::ge: return ">=";
    case compare_op::lt: return "<";
    case compare_op::le: return "<=";
  }
  return ">";
}

const char* to_string(no_data_policy p) {
  switch (p) {
    case no_data_policy::keep: return "keep";
    case no_data_policy::resolve: return "resolve";
    case no_data_policy::alerting: return "alerting";
  }
  return "keep";
}

std::optional<no_data_policy> no_data_from(const std::string& s) {
  for (auto p : {no_data_policy::keep, no_data_policy::resolve, no_data_policy::alerting})
    if (s == to_string(p))
      return p;
  return std::nullopt;
}

namespace {

bool label_name_valid(const std::string& k) {
  if (k.empty() || k.size() > 128)
    return false;
  for (std::size_t i = 0; i < k.size(); ++i) {
    auto c = static_cast<unsigned char>(k[i]);
    bool ok = std::isalpha(c) || c == '_' || (i > 0 && std::isdigit(c));
    if (!ok)
      return false;
  }
  // The labels every alert already carries (Alertmanager, silences) cannot be redefined.
  for (auto* reserved : {"alertname", "rule_id", "scope", "scope_id", "household_id", "metric"})
    if (k == reserved)
      return false;
  return k.rfind("__", 0) != 0;  // Prometheus reserves the __ prefix
}

} // namespace

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

std::optional<rule_error> check_webhook_target(const webhook_target& t,
                                               const rule_limits& limits) {
  if (auto a = literal_address(t.host); a && !target_address_allowed(*a, limits.allow_private_targets)) {
    auto c = classify_address(*a);
    return rule_error{
        "webhook_url_forbidden", "webhook_url",
        "webhook_url points at " + a->to_string() + " (" + c.range + "), which is not a " +
            "public address" +
            (c.scope == address_scope::never ? std::string{}
                                             : "; alerts.allow_private_targets allows such "
                                               "targets on lab set-ups")};
  }
  if (!host_allowed(t.host, limits.allowed_hosts))
    return rule_error{"webhook_host_not_allowed", "webhook_url",
                      "webhook host '" + t.host + "' is not in alerts.allowed_hosts"};
  return std::nullopt;
}

std::optional<rule_error> parse_object_body(const std::string& body, int json_max_depth,
                                            const std::function<bool(const std::string&)>& known,
                                            rapidjson::Document& doc) {
  if (auto err = http::parse_json(body, doc, json_max_depth))
    return rule_error{"invalid_json", "body", err->message};
  if (!doc.IsObject())
    return rule_error{"invalid_json", "body", "the body must be a JSON object"};
  for (auto it = doc.MemberBegin(); it != doc.MemberEnd(); ++it) {
    std::string k(it->name.GetString(), it->name.GetStringLength());
    if (!known(k))
      return rule_error{"unknown_field", k, "unknown field '" + k + "'"};
  }
  return std::nullopt;
}

std::variant<alert_rule, rule_error> parse_rule(const std::string& body,
                                                const rule_limits& limits) {
  rapidjson::Document doc;
  if (auto err = parse_object_body(body, limits.json_max_depth, known_field, doc))
    return *err;
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
  const metric_def* def = metric ? find_metric(*metric) : nullptr;
  if (!def)
    return bad("metric", "metric must be one of " + metric_names());
  r.metric = def->kind;
  // Rejecting a metric a scope does not have beats guessing (see rules/alert_metrics.cpp).
  bool household = r.scope == scope_kind::household;
  if (household ? !def->for_households : !def->for_devices) {
    std::string fits;
    for (auto& d : metric_defs())
      if (household ? d.for_households : d.for_devices)
        fits += (fits.empty() ? "" : " or ") + std::string(d.name);
    return rule_error{"unsupported_metric", "metric",
                      std::string(def->name) + " is only available for " +
                          (household ? "device" : "household") + " scope; use " + fits +
                          " for " + (household ? "households" : "devices")};
  }

  if (!def->per_bucket) {
    // silence_sec is observed every feed cycle from the last reading: a window means nothing.
    if (doc.HasMember("window"))
      return bad("window", std::string("window is not allowed with ") + def->name);
    r.window_us = minute_us;
  } else {
    auto window = string_field(doc, "window");
    if (window && *window == "1m")
      r.window_us = minute_us;
    else if (window && *window == "5m")
      r.window_us = 5 * minute_us;
    else
      return bad("window", "window must be \"1m\" or \"5m\"");
  }

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
  if (!def->per_bucket && r.threshold < 0)
    return bad("value", "value must be a number of seconds (>= 0) for silence_sec");

  if (auto it = doc.FindMember("cooldown_sec"); it != doc.MemberEnd()) {
    auto n = http::json_integer(it->value);
    if (!n || *n < 0 || *n > 7 * 86400)
      return bad("cooldown_sec", "cooldown_sec must be an integer between 0 and 604800");
    r.cooldown_sec = *n;
  }
  if (auto it = doc.FindMember("for_buckets"); it != doc.MemberEnd()) {
    auto n = http::json_integer(it->value);
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

  if (auto it = doc.FindMember("no_data"); it != doc.MemberEnd()) {
    auto p = it->value.IsString() ? no_data_from(it->value.GetString()) : std::nullopt;
    if (!p)
      return bad("no_data", "no_data must be \"keep\", \"resolve\" or \"alerting\"");
    // A silent scope is what silence_sec measures: "no data" is its observation, not a gap.
    if (!def->per_bucket && *p != no_data_policy::keep)
      return bad("no_data", std::string("no_data does not apply to ") + def->name);
    r.no_data = *p;
  }
  if (auto it = doc.FindMember("repeat_interval_sec"); it != doc.MemberEnd()) {
    auto n = http::json_integer(it->value);
    if (!n || *n < 0 || *n > 30 * 86400)
      return bad("repeat_interval_sec",
                 "repeat_interval_sec must be an integer between 0 (never) and 2592000");
    r.repeat_interval_sec = *n;
  }
  if (auto it = doc.FindMember("name"); it != doc.MemberEnd() && !it->value.IsNull()) {
    if (!it->value.IsString() || it->value.GetStringLength() == 0 ||
        it->value.GetStringLength() > 200)
      return bad("name", "name must be a non-empty string of at most 200 bytes, or null");
    r.name.assign(it->value.GetString(), it->value.GetStringLength());
  }
  if (auto it = doc.FindMember("labels"); it != doc.MemberEnd() && !it->value.IsNull()) {
    if (!it->value.IsObject() || it->value.MemberCount() > 32)
      return bad("labels", "labels must be an object of at most 32 string values");
    for (auto m = it->value.MemberBegin(); m != it->value.MemberEnd(); ++m) {
      std::string k(m->name.GetString(), m->name.GetStringLength());
      if (!label_name_valid(k))
        return bad("labels", "label name '" + k + "' must match [a-zA-Z_][a-zA-Z0-9_]* and "
                             "not be one of alertname, rule_id, scope, scope_id, household_id, "
                             "metric");
      if (!m->value.IsString() || m->value.GetStringLength() > 256)
        return bad("labels", "label '" + k + "' must be a string of at most 256 bytes");
      r.labels[k] = std::string(m->value.GetString(), m->value.GetStringLength());
    }
  }

  if (auto it = doc.FindMember("enabled"); it != doc.MemberEnd()) {
    if (!it->value.IsBool())
      return bad("enabled", "enabled must be true or false");
    r.enabled = it->value.GetBool();
  }
  if (auto it = doc.FindMember("receiver_id"); it != doc.MemberEnd() && !it->value.IsNull()) {
    auto id = it->value.IsString() ? http::normalize_uuid(it->value.GetString()) : std::nullopt;
    if (!id)
      return bad("receiver_id", "receiver_id must be a UUID");
    // One destination per rule: a named receiver, or the rule's own webhook.
    for (auto* f : {"webhook_url", "webhook_secret"})
      if (auto w = doc.FindMember(f); w != doc.MemberEnd() && !w->value.IsNull())
        return bad("receiver_id", std::string("receiver_id and ") + f +
                                      " exclude each other (a rule has one destination)");
    r.receiver_id = *id;
    return r;
  }

  auto url = string_field(doc, "webhook_url");
  if (!url || url->size() > 2048)
    return bad("webhook_url", "webhook_url must be an http:// or https:// URL (or name a "
                              "receiver_id)");
  auto target = parse_webhook_url(*url);
  if (!target)
    return bad("webhook_url", "webhook_url must be an http:// or https:// URL with a host");
  if (auto e = check_webhook_target(*target, limits))
    return *e;
  r.webhook_url = *url;

  auto secret = string_field(doc, "webhook_secret");
  if (!secret || secret->empty() || secret->size() > 512)
    return bad("webhook_secret", "webhook_secret must be a non-empty string (at most 512 bytes)");
  r.webhook_secret = *secret;

  return r;
}

std::string render_rule(const alert_rule& r) { return http::json::render(r, write_rule); }

std::string render_rules(const std::vector<alert_rule>& rs) {
  return http::json::render_list("rules", rs, write_rule);
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
