#include "bench/alert_rules.hpp"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cstdlib>
#include <sstream>
#include <stdexcept>

#include "common/hash.hpp"

namespace joule::bench {

std::string alert_rule_json(const alert_rule_spec& r) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("scope"); w.String(r.scope);
  w.Key("scope_id"); w.String(r.scope_id);
  w.Key("metric"); w.String(r.metric);
  w.Key("window"); w.String(r.window);
  w.Key("op"); w.String(r.op);
  w.Key("value"); w.Double(r.value);
  w.Key("cooldown_sec"); w.Int64(r.cooldown_sec);
  w.Key("webhook_url"); w.String(r.webhook_url);
  w.Key("webhook_secret"); w.String(r.webhook_secret);
  w.Key("enabled"); w.Bool(true);
  w.EndObject();
  return buf.GetString();
}

alert_rule_spec background_rule(const fleet_ids& ids, uint64_t seed, uint64_t k,
                                const std::string& webhook_url) {
  if (ids.device_ids.empty() || ids.household_ids.empty())
    throw std::invalid_argument("background rules need at least one device");
  const uint64_t h = hash_of(seed, 0x616c65727473ULL, k); // "alerts"
  alert_rule_spec r;
  const bool household = (h & 1) != 0;
  r.window = (h & 2) ? "5m" : "1m";
  if (household) {
    r.scope = "household";
    r.scope_id = ids.household_ids[(h >> 8) % ids.household_ids.size()];
    r.metric = "power_w_avg";
  } else {
    r.scope = "device";
    r.scope_id = ids.device_ids[(h >> 8) % ids.device_ids.size()];
    r.metric = "power_w_max";
  }
  r.op = ">";
  r.value = 1e12;
  r.webhook_url = webhook_url;
  return r;
}

alert_rule_spec probe_rule(const std::string& device_id, const std::string& webhook_url) {
  alert_rule_spec r;
  r.scope = "device";
  r.scope_id = device_id;
  r.metric = "power_w_max";
  r.window = "1m";
  r.op = ">";
  r.value = 1e6;
  r.cooldown_sec = 0;
  r.webhook_url = webhook_url;
  return r;
}

namespace {

bool string_member(const rapidjson::Value& o, const char* key, std::string& out) {
  auto it = o.FindMember(key);
  if (it == o.MemberEnd() || !it->value.IsString())
    return false;
  out.assign(it->value.GetString(), it->value.GetStringLength());
  return true;
}

} // namespace

bool read_rule_id(const std::string& body, std::string& id) {
  rapidjson::Document d;
  d.Parse(body.c_str(), body.size());
  return !d.HasParseError() && d.IsObject() && string_member(d, "id", id) && !id.empty();
}

bool read_alert_manager_status(const std::string& body, bool& loaded, int64_t& evaluators) {
  rapidjson::Document d;
  d.Parse(body.c_str(), body.size());
  if (d.HasParseError() || !d.IsObject())
    return false;
  auto m = d.FindMember("alerts.manager");
  if (m == d.MemberEnd() || !m->value.IsObject())
    return false;
  auto l = m->value.FindMember("loaded");
  auto e = m->value.FindMember("evaluators");
  if (l == m->value.MemberEnd() || !l->value.IsBool() || e == m->value.MemberEnd() ||
      !e->value.IsInt64())
    return false;
  loaded = l->value.GetBool();
  evaluators = e->value.GetInt64();
  return true;
}

bool parse_webhook_body(const std::string& body, webhook_fields& out) {
  rapidjson::Document d;
  d.Parse(body.c_str(), body.size());
  if (d.HasParseError() || !d.IsObject())
    return false;
  out = {};
  string_member(d, "alert_id", out.alert_id);
  string_member(d, "scope_id", out.scope_id);
  return string_member(d, "rule_id", out.rule_id) && string_member(d, "status", out.status);
}

bool parse_proc_stat_cpu_ticks(const std::string& stat, uint64_t& ticks) {
  // "pid (comm) state ppid ..." — comm may hold spaces and ')': fields count from the last ')'.
  auto close = stat.rfind(')');
  if (close == std::string::npos)
    return false;
  std::istringstream in(stat.substr(close + 1));
  std::string field;
  // After ')': field 3 (state) is the first; utime and stime are fields 14 and 15.
  uint64_t utime = 0, stime = 0;
  for (int n = 3; n <= 15; ++n) {
    if (!(in >> field))
      return false;
    if (n == 14 || n == 15) {
      char* end = nullptr;
      const auto v = std::strtoull(field.c_str(), &end, 10);
      if (end == field.c_str() || *end != '\0')
        return false;
      (n == 14 ? utime : stime) = v;
    }
  }
  ticks = utime + stime;
  return true;
}

bool parse_vm_rss_kb(const std::string& status, uint64_t& kb) {
  auto pos = status.find("VmRSS:");
  if (pos == std::string::npos)
    return false;
  std::istringstream in(status.substr(pos + 6));
  uint64_t v = 0;
  std::string unit;
  if (!(in >> v >> unit) || unit != "kB")
    return false;
  kb = v;
  return true;
}

} // namespace joule::bench
