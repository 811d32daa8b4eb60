// Rule parsing and validation (pure): every field's 400, defaults, URL and host checks.
#include <gtest/gtest.h>

#include "rules/rule.hpp"

namespace joule::rules {
namespace {

const char* dev = "11111111-1111-4111-8111-111111111111";

std::string body(const std::string& extra_or_override = "", const std::string& drop = "") {
  std::vector<std::pair<std::string, std::string>> f = {
      {"scope", "\"device\""},
      {"scope_id", std::string("\"") + dev + "\""},
      {"metric", "\"power_w_avg\""},
      {"window", "\"1m\""},
      {"op", "\">\""},
      {"value", "100"},
      {"webhook_url", "\"http://hooks.example.com/alert\""},
      {"webhook_secret", "\"s3cret\""},
  };
  std::string out = "{";
  bool first = true;
  for (auto& [k, v] : f) {
    if (k == drop)
      continue;
    out += (first ? "\"" : ",\"") + k + "\":" + v;
    first = false;
  }
  if (!extra_or_override.empty())
    out += (first ? "" : ",") + extra_or_override;
  return out + "}";
}

rule_error error_of(const std::string& b, const std::string& hosts = "") {
  auto r = parse_rule(b, rule_limits{hosts});
  if (!std::holds_alternative<rule_error>(r)) {
    ADD_FAILURE() << "accepted: " << b;
    return {};
  }
  return std::get<rule_error>(r);
}

TEST(RuleModel, ValidBodyGetsDefaults) {
  auto r = parse_rule(body(), {});
  ASSERT_TRUE(std::holds_alternative<alert_rule>(r));
  auto& rule = std::get<alert_rule>(r);
  EXPECT_EQ(rule.scope, scope_kind::device);
  EXPECT_EQ(rule.scope_id, dev);
  EXPECT_EQ(rule.metric, metric_kind::power_w_avg);
  EXPECT_EQ(rule.window_us, minute_us);
  EXPECT_EQ(rule.op, compare_op::gt);
  EXPECT_EQ(rule.threshold, 100);
  EXPECT_EQ(rule.cooldown_sec, 300);
  EXPECT_EQ(rule.for_buckets, 1);
  EXPECT_FALSE(rule.recover_value);
  EXPECT_TRUE(rule.enabled);
}

TEST(RuleModel, SilenceSecHasNoWindow) {
  auto silent = [](const std::string& extra = "") {
    std::string b = body("\"metric\":\"silence_sec\"" + extra, "metric");
    // body() always sends a window: take it out again for the valid case.
    auto at = b.find("\"window\":\"1m\",");
    return at == std::string::npos ? b : b.erase(at, std::string("\"window\":\"1m\",").size());
  };
  auto r = parse_rule(silent(), {});
  ASSERT_TRUE(std::holds_alternative<alert_rule>(r)) << std::get<rule_error>(r).message;
  EXPECT_EQ(std::get<alert_rule>(r).metric, metric_kind::silence_sec);
  EXPECT_NE(render_rule(std::get<alert_rule>(r)).find("\"window\":null"), std::string::npos);
  auto e = error_of(body("\"metric\":\"silence_sec\"", "metric"));
  EXPECT_EQ(e.code, "invalid_window");
  EXPECT_NE(e.message.find("not allowed"), std::string::npos);
  EXPECT_EQ(error_of(silent(",\"no_data\":\"resolve\"")).code, "invalid_no_data");
  auto hh = silent();
  hh.replace(hh.find("\"device\""), 8, "\"household\"");
  EXPECT_TRUE(std::holds_alternative<alert_rule>(parse_rule(hh, {})));
}

TEST(RuleModel, NoDataRepeatNameAndLabels) {
  auto r = parse_rule(body("\"no_data\":\"resolve\",\"repeat_interval_sec\":600,"
                           "\"name\":\"Fridge hot\",\"labels\":{\"team\":\"energy\"}"),
                      {});
  ASSERT_TRUE(std::holds_alternative<alert_rule>(r));
  auto& rule = std::get<alert_rule>(r);
  EXPECT_EQ(rule.no_data, no_data_policy::resolve);
  EXPECT_EQ(rule.repeat_interval_sec, 600);
  EXPECT_EQ(rule.name, "Fridge hot");
  EXPECT_EQ(rule.labels.at("team"), "energy");
  auto text = render_rule(rule);
  EXPECT_NE(text.find("\"labels\":{\"team\":\"energy\"}"), std::string::npos) << text;
  EXPECT_NE(text.find("\"no_data\":\"resolve\""), std::string::npos) << text;
  auto defaults = std::get<alert_rule>(parse_rule(body(), {}));
  EXPECT_EQ(defaults.no_data, no_data_policy::keep);
  EXPECT_EQ(defaults.repeat_interval_sec, 0);
  EXPECT_EQ(error_of(body("\"no_data\":\"maybe\"")).code, "invalid_no_data");
  EXPECT_EQ(error_of(body("\"repeat_interval_sec\":-1")).code, "invalid_repeat_interval_sec");
  EXPECT_EQ(error_of(body("\"labels\":{\"rule_id\":\"x\"}")).code, "invalid_labels");
  EXPECT_EQ(error_of(body("\"labels\":{\"9x\":\"x\"}")).code, "invalid_labels");
  EXPECT_EQ(error_of(body("\"labels\":{\"team\":1}")).code, "invalid_labels");
  EXPECT_EQ(error_of(body("\"name\":\"\"")).code, "invalid_name");
}

TEST(RuleModel, UpperCaseUuidIsNormalised) {
  auto b = body("\"scope_id\":\"AAAAAAAA-1111-4111-8111-111111111111\"", "scope_id");
  auto ok = parse_rule(b, {});
  ASSERT_TRUE(std::holds_alternative<alert_rule>(ok));
  EXPECT_EQ(std::get<alert_rule>(ok).scope_id, "aaaaaaaa-1111-4111-8111-111111111111");
}

TEST(RuleModel, EveryFieldHasItsOwn400) {
  struct c {
    std::string body, field, code;
  } cases[] = {
      {"not json", "body", "invalid_json"},
      {"[1,2]", "body", "invalid_json"},
      {body("\"scope\":\"street\"", "scope"), "scope", "invalid_scope"},
      {body("", "scope"), "scope", "invalid_scope"},
      {body("\"scope_id\":\"nope\"", "scope_id"), "scope_id", "invalid_scope_id"},
      {body("\"metric\":\"voltage\"", "metric"), "metric", "invalid_metric"},
      {body("\"window\":\"1h\"", "window"), "window", "invalid_window"},
      {body("\"op\":\"==\"", "op"), "op", "invalid_op"},
      {body("\"value\":\"100\"", "value"), "value", "invalid_value"},
      {body("", "value"), "value", "invalid_value"},
      {body("\"cooldown_sec\":-1"), "cooldown_sec", "invalid_cooldown_sec"},
      {body("\"cooldown_sec\":1.5"), "cooldown_sec", "invalid_cooldown_sec"},
      {body("\"for_buckets\":0"), "for_buckets", "invalid_for_buckets"},
      {body("\"recover_value\":\"x\""), "recover_value", "invalid_recover_value"},
      {body("\"recover_value\":120"), "recover_value", "invalid_recover_value"},
      {body("\"webhook_url\":\"ftp://x/\"", "webhook_url"), "webhook_url", "invalid_webhook_url"},
      {body("\"webhook_url\":\"http://\"", "webhook_url"), "webhook_url", "invalid_webhook_url"},
      {body("\"webhook_url\":\"http://u:p@x/\"", "webhook_url"), "webhook_url",
       "invalid_webhook_url"},
      {body("\"webhook_url\":\"http://x:99999/\"", "webhook_url"), "webhook_url",
       "invalid_webhook_url"},
      {body("\"webhook_secret\":\"\"", "webhook_secret"), "webhook_secret",
       "invalid_webhook_secret"},
      {body("\"enabled\":1"), "enabled", "invalid_enabled"},
      {body("\"colour\":\"red\""), "colour", "unknown_field"},
  };
  for (auto& c : cases) {
    auto e = error_of(c.body);
    EXPECT_EQ(e.field, c.field) << c.body;
    EXPECT_EQ(e.code, c.code) << c.body;
    EXPECT_NE(e.message.find(c.field == "body" ? "JSON" : c.field), std::string::npos)
        << e.message;
  }
}

TEST(RuleModel, HouseholdMaxIsRejectedWithAReason) {
  auto bad = "{\"scope\":\"household\",\"scope_id\":\"" + std::string(dev) +
             "\",\"metric\":\"power_w_max\",\"window\":\"5m\",\"op\":\">\",\"value\":1,"
             "\"webhook_url\":\"http://x/\",\"webhook_secret\":\"s\"}";
  auto e = error_of(bad);
  EXPECT_EQ(e.code, "unsupported_metric");
  EXPECT_EQ(e.field, "metric");
}

TEST(RuleModel, RecoverValueMustSitOnTheHealthySide) {
  EXPECT_TRUE(std::holds_alternative<alert_rule>(parse_rule(body("\"recover_value\":80"), {})));
  auto below = body("\"op\":\"<\",\"recover_value\":120", "op");
  EXPECT_TRUE(std::holds_alternative<alert_rule>(parse_rule(below, {})));
  EXPECT_EQ(error_of(body("\"op\":\"<\",\"recover_value\":80", "op")).field, "recover_value");
}

TEST(RuleModel, ReadOnlyFieldsOfAFetchedRuleAreIgnored) {
  auto r = parse_rule(body("\"id\":\"x\",\"version\":3,\"webhook_secret_set\":true"), {});
  EXPECT_TRUE(std::holds_alternative<alert_rule>(r));
}

TEST(RuleModel, AllowedHosts) {
  EXPECT_TRUE(host_allowed("anything", ""));
  EXPECT_TRUE(host_allowed("hooks.example.com", "a.com, hooks.example.com"));
  EXPECT_TRUE(host_allowed("HOOKS.example.com", "hooks.example.com"));
  EXPECT_TRUE(host_allowed("x.example.com", ".example.com"));
  EXPECT_FALSE(host_allowed("example.com.evil.net", ".example.com"));
  EXPECT_FALSE(host_allowed("evil.net", "hooks.example.com"));
  auto e = error_of(body(), "127.0.0.1");
  EXPECT_EQ(e.code, "webhook_host_not_allowed");
  EXPECT_EQ(e.field, "webhook_url");
}

TEST(RuleModel, WebhookUrlParsing) {
  auto t = parse_webhook_url("https://Hooks.Example.com:8443/a/b?c=d");
  ASSERT_TRUE(t);
  EXPECT_TRUE(t->tls);
  EXPECT_EQ(t->host, "hooks.example.com");
  EXPECT_EQ(t->port, 8443);
  EXPECT_EQ(t->target, "/a/b?c=d");
  EXPECT_EQ(t->destination(), "https://hooks.example.com:8443");
  auto d = parse_webhook_url("http://127.0.0.1");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->port, 80);
  EXPECT_EQ(d->target, "/");
  auto v6 = parse_webhook_url("http://[::1]:9000/x");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, 9000);
  EXPECT_FALSE(parse_webhook_url("http://a b/"));
  EXPECT_FALSE(parse_webhook_url("http://x/#frag"));
  EXPECT_FALSE(parse_webhook_url("gopher://x/"));
}

TEST(RuleModel, RenderHidesTheSecret) {
  auto r = std::get<alert_rule>(parse_rule(body(), {}));
  r.id = "abc";
  auto json = render_rule(r);
  EXPECT_EQ(json.find("s3cret"), std::string::npos);
  EXPECT_NE(json.find("\"webhook_secret_set\":true"), std::string::npos);
  EXPECT_NE(json.find("\"id\":\"abc\""), std::string::npos);
}

TEST(RuleModel, RandomUuidsAreVersion4AndDistinct) {
  auto a = random_uuid(), b = random_uuid();
  EXPECT_NE(a, b);
  ASSERT_EQ(a.size(), 36u);
  EXPECT_EQ(a[14], '4');
  EXPECT_TRUE(a[19] == '8' || a[19] == '9' || a[19] == 'a' || a[19] == 'b');
}

} // namespace
} // namespace joule::rules
