// Fuzz target: the alert rule parser (rules::parse_rule, with parse_webhook_url and
// host_allowed behind it). Input: a POST/PUT /alerts/rules body. An accepted rule must render
// to JSON that a client can PUT back (with its secret) and get the same rule. The same input
// also goes to the receiver and silence parsers (POST /alerts/receivers, /alerts/silences):
// what they accept must satisfy their invariants and render to valid JSON without the secret.

#include <cstddef>
#include <cstdint>
#include <string>
#include <variant>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "http/router.hpp"
#include "rules/receiver.hpp"
#include "rules/rule.hpp"
#include "rules/silence.hpp"
#include "tests/fuzz/fuzz_check.hpp"

using namespace joule;
using namespace joule::rules;

namespace {

bool same_definition(const alert_rule& a, const alert_rule& b) {
  return a.scope == b.scope && a.scope_id == b.scope_id && a.metric == b.metric &&
         a.window_us == b.window_us && a.op == b.op && a.threshold == b.threshold &&
         a.cooldown_sec == b.cooldown_sec && a.for_buckets == b.for_buckets &&
         a.recover_value == b.recover_value && a.webhook_url == b.webhook_url &&
         a.webhook_secret == b.webhook_secret && a.enabled == b.enabled;
}

void check_accepted(const alert_rule& r, const std::string& allowed_hosts) {
  FUZZ_CHECK(http::normalize_uuid(r.scope_id) == r.scope_id);
  FUZZ_CHECK(r.window_us == minute_us || r.window_us == 5 * minute_us);
  FUZZ_CHECK(r.cooldown_sec >= 0 && r.cooldown_sec <= 7 * 86400);
  FUZZ_CHECK(r.for_buckets >= 1 && r.for_buckets <= 1000);
  FUZZ_CHECK(!r.webhook_secret.empty());
  auto target = parse_webhook_url(r.webhook_url);
  FUZZ_CHECK(target && !target->host.empty() && target->port != 0);
  FUZZ_CHECK(host_allowed(target->host, allowed_hosts));

  // GET then PUT of the same rule: the rendered form plus the secret parses to the same rule.
  // (Spliced as text: a DOM round trip here would convert the numbers once more.)
  auto rendered = render_rule(r);
  FUZZ_CHECK(rendered.size() > 2 && rendered.back() == '}');
  rapidjson::StringBuffer secret;
  rapidjson::Writer<rapidjson::StringBuffer> w{secret};
  w.String(r.webhook_secret.c_str(), static_cast<rapidjson::SizeType>(r.webhook_secret.size()));
  rendered.pop_back();
  rendered += ",\"webhook_secret\":" + std::string(secret.GetString(), secret.GetSize()) + "}";
  auto again = parse_rule(rendered, rule_limits{allowed_hosts, false, 32});
  auto* back = std::get_if<alert_rule>(&again);
  FUZZ_CHECK(back);
  FUZZ_CHECK(same_definition(r, *back));
}

bool valid_json_object(const std::string& text) {
  rapidjson::Document d;
  d.Parse(text.c_str(), text.size());
  return !d.HasParseError() && d.IsObject();
}

void check_receiver(const std::string& body, const std::string& allowed) {
  auto r = parse_receiver(body, rule_limits{allowed, false, 32});
  if (auto* e = std::get_if<rule_error>(&r)) {
    FUZZ_CHECK(!e->code.empty() && !e->message.empty());
    return;
  }
  auto& rc = std::get<alert_receiver>(r);
  FUZZ_CHECK((rc.kind == receiver_kind::webhook) == !rc.secret.empty());
  auto target = parse_webhook_url(rc.url);
  FUZZ_CHECK(target && !target->host.empty() && target->port != 0);
  FUZZ_CHECK(host_allowed(target->host, allowed));
  FUZZ_CHECK(rc.group_wait_sec >= 0 && rc.group_interval_sec >= 0);
  for (auto& g : rc.group_by)
    FUZZ_CHECK(g == "household_id" || g == "rule_id" || g == "scope_id");
  auto rendered = render_receiver(rc);
  FUZZ_CHECK(valid_json_object(rendered));
  FUZZ_CHECK(rendered.find("\"secret\":") == std::string::npos);  // never returned
}

void check_silence(const std::string& body) {
  const std::int64_t now = 1'700'000'000'000'000;
  auto r = parse_silence(body, now, 32);
  if (auto* e = std::get_if<rule_error>(&r)) {
    FUZZ_CHECK(!e->code.empty() && !e->message.empty());
    return;
  }
  auto& s = std::get<alert_silence>(r);
  FUZZ_CHECK(s.ends_at > s.starts_at && s.ends_at > now);
  for (auto& [k, v] : s.matchers) {
    FUZZ_CHECK(!k.empty());
    if (k == "rule_id" || k == "scope_id" || k == "household_id")
      FUZZ_CHECK(http::normalize_uuid(v) == v);
  }
  FUZZ_CHECK(valid_json_object(render_silence(s)));
  FUZZ_CHECK(valid_json_object(matchers_json(s.matchers)));
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string body(reinterpret_cast<const char*>(data), size);
  // Any host, then an allow-list with an exact host and a subdomain entry.
  for (const std::string allowed : {"", "hooks.example.com, .example.org"}) {
    check_receiver(body, allowed);
    auto r = parse_rule(body, rule_limits{allowed, false, 32});
    if (auto* e = std::get_if<rule_error>(&r)) {
      // `field` names the offending key, which may itself be "" (an unknown empty key).
      FUZZ_CHECK(!e->code.empty() && !e->message.empty());
      continue;
    }
    check_accepted(std::get<alert_rule>(r), allowed);
  }
  check_silence(body);
  return 0;
}
