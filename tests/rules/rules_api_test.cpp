// /alerts/rules and /alerts/events over real HTTP against an in-process server: CRUD, and
// every 400 and 404 case with the field named.
#include "tests/rules/alerts_fixture.hpp"

namespace joule::rules::test {
namespace {

using joule::test::http_request;

class RulesApi : public AlertsTest {};

void expect_error(const joule::test::http_result& r, int status, const std::string& code,
                  const std::string& mentions = "") {
  EXPECT_EQ(r.status, status) << r.body;
  auto d = json(r.body);
  ASSERT_TRUE(d.IsObject() && d.HasMember("error")) << r.body;
  ASSERT_TRUE(d["error"].HasMember("code") && d["error"].HasMember("message")) << r.body;
  EXPECT_EQ(std::string(d["error"]["code"].GetString()), code) << r.body;
  if (!mentions.empty()) {
    EXPECT_NE(std::string(d["error"]["message"].GetString()).find(mentions), std::string::npos)
        << r.body;
  }
}

TEST_F(RulesApi, CreateReadUpdateDelete) {
  auto [dev, hh] = new_device();
  auto body = rule_body("device", dev, "power_w_avg", "5m", 1500, 9, "\"for_buckets\":2");
  auto created = http_request(port, "POST", "/alerts/rules", body);
  ASSERT_EQ(created.status, 201) << created.body;
  auto c = json(created.body);
  std::string id = c["id"].GetString();
  EXPECT_EQ(id.size(), 36u);
  EXPECT_EQ(std::string(c["scope_id"].GetString()), dev);
  EXPECT_EQ(std::string(c["window"].GetString()), "5m");
  EXPECT_EQ(c["value"].GetDouble(), 1500);
  EXPECT_EQ(c["cooldown_sec"].GetInt(), 300);  // default
  EXPECT_EQ(c["for_buckets"].GetInt(), 2);
  EXPECT_TRUE(c["enabled"].GetBool());
  EXPECT_EQ(created.body.find(secret), std::string::npos);  // never echoed

  auto got = http_request(port, "GET", "/alerts/rules/" + id);
  ASSERT_EQ(got.status, 200);
  EXPECT_EQ(std::string(json(got.body)["id"].GetString()), id);

  auto list = http_request(port, "GET", "/alerts/rules");
  ASSERT_EQ(list.status, 200);
  auto l = json(list.body);
  ASSERT_TRUE(l["rules"].IsArray());
  bool found = false;
  for (auto& r : l["rules"].GetArray())
    found |= std::string(r["id"].GetString()) == id;
  EXPECT_TRUE(found);

  auto changed = rule_body("household", hh, "energy_wh_sum", "1m", 50, 9, "\"enabled\":false");
  auto put = http_request(port, "PUT", "/alerts/rules/" + id, changed);
  ASSERT_EQ(put.status, 200) << put.body;
  auto p = json(put.body);
  EXPECT_EQ(std::string(p["scope"].GetString()), "household");
  EXPECT_EQ(std::string(p["scope_id"].GetString()), hh);
  EXPECT_FALSE(p["enabled"].GetBool());
  EXPECT_EQ(p["version"].GetInt64(), 2);
  EXPECT_EQ(p["for_buckets"].GetInt(), 1);  // PUT replaces the definition

  EXPECT_EQ(http_request(port, "DELETE", "/alerts/rules/" + id).status, 204);
  expect_error(http_request(port, "GET", "/alerts/rules/" + id), 404, "rule_not_found");
  expect_error(http_request(port, "DELETE", "/alerts/rules/" + id), 404, "rule_not_found");
  expect_error(http_request(port, "PUT", "/alerts/rules/" + id, changed), 404, "rule_not_found");
}

TEST_F(RulesApi, EveryInvalidFieldIsA400NamingIt) {
  auto [dev, hh] = new_device();
  auto valid = rule_body("device", dev, "power_w_avg", "1m", 10, 9);
  auto with = [&](const std::string& field, const std::string& value) {
    auto b = valid;
    auto k = "\"" + field + "\":";
    auto pos = b.find(k);
    if (pos == std::string::npos)
      return b.substr(0, b.size() - 1) + "," + k + value + "}";
    auto end = b.find_first_of(",}", pos + k.size());
    if (b[pos + k.size()] == '"')
      end = b.find('"', pos + k.size() + 1) + 1;
    return b.substr(0, pos) + k + value + b.substr(end);
  };
  struct c {
    std::string body, code, field;
  } cases[] = {
      {"{", "invalid_json", "JSON"},
      {with("scope", "\"site\""), "invalid_scope", "scope"},
      {with("scope_id", "\"12\""), "invalid_scope_id", "scope_id"},
      {with("metric", "\"volts\""), "invalid_metric", "metric"},
      {with("window", "\"15m\""), "invalid_window", "window"},
      {with("op", "\"!=\""), "invalid_op", "op"},
      {with("value", "null"), "invalid_value", "value"},
      {with("cooldown_sec", "-5"), "invalid_cooldown_sec", "cooldown_sec"},
      {with("for_buckets", "0"), "invalid_for_buckets", "for_buckets"},
      {with("recover_value", "99"), "invalid_recover_value", "recover_value"},
      {with("webhook_url", "\"file:///etc/passwd\""), "invalid_webhook_url", "webhook_url"},
      {with("webhook_url", "\"http://evil.example.net/x\""), "webhook_host_not_allowed",
       "alerts.allowed_hosts"},
      {with("webhook_secret", "\"\""), "invalid_webhook_secret", "webhook_secret"},
      {with("enabled", "\"yes\""), "invalid_enabled", "enabled"},
      {with("threshold", "3"), "unknown_field", "threshold"},
      {rule_body("household", hh, "power_w_max", "5m", 1, 9), "unsupported_metric",
       "power_w_max"},
  };
  for (auto& c : cases) {
    SCOPED_TRACE(c.body);
    expect_error(http_request(port, "POST", "/alerts/rules", c.body), 400, c.code, c.field);
  }
  // The same validation guards PUT.
  auto id = create_rule(valid);
  ASSERT_FALSE(id.empty());
  expect_error(http_request(port, "PUT", "/alerts/rules/" + id, with("op", "\"=\"")), 400,
               "invalid_op", "op");
  // A subdomain of an allowed suffix passes the allow-list.
  auto sub = with("webhook_url", "\"https://hooks.allowed.example/x\"");
  EXPECT_EQ(http_request(port, "POST", "/alerts/rules", sub).status, 201);
}

TEST_F(RulesApi, UnknownScopeIdsAndRuleIdsAre404AndBadIdsAre400) {
  auto [dev, hh] = new_device();
  auto ghost = random_uuid();
  expect_error(http_request(port, "POST", "/alerts/rules",
                            rule_body("device", ghost, "power_w_avg", "1m", 1, 9)),
               404, "device_not_found", ghost);
  // A household id is not a device id, and vice versa.
  expect_error(http_request(port, "POST", "/alerts/rules",
                            rule_body("device", hh, "power_w_avg", "1m", 1, 9)),
               404, "device_not_found");
  expect_error(http_request(port, "POST", "/alerts/rules",
                            rule_body("household", dev, "power_w_avg", "1m", 1, 9)),
               404, "household_not_found");
  EXPECT_EQ(http_request(port, "POST", "/alerts/rules",
                         rule_body("household", hh, "power_w_avg", "1m", 1, 9))
                .status,
            201);
  auto id = create_rule(rule_body("device", dev, "power_w_avg", "1m", 1, 9));
  expect_error(http_request(port, "PUT", "/alerts/rules/" + id,
                            rule_body("device", ghost, "power_w_avg", "1m", 1, 9)),
               404, "device_not_found");
  expect_error(http_request(port, "GET", "/alerts/rules/" + random_uuid()), 404,
               "rule_not_found");
  expect_error(http_request(port, "GET", "/alerts/rules/42"), 400, "invalid_rule_id");
  expect_error(http_request(port, "DELETE", "/alerts/rules/x"), 400, "invalid_rule_id");
  EXPECT_EQ(http_request(port, "PATCH", "/alerts/rules/" + id).status, 405);
}

// 200,000 '[' used to overflow the recursive parser's stack and take the process down.
TEST_F(RulesApi, DeeplyNestedBodiesAre400InvalidJsonOnPostAndPut) {
  auto [dev, hh] = new_device();
  auto id = create_rule(rule_body("device", dev, "power_w_avg", "1m", 10, 9));
  ASSERT_FALSE(id.empty());
  std::string objects;
  for (int i = 1; i < 100; ++i)
    objects += "{\"a\":";
  objects += "{}" + std::string(99, '}');
  for (const auto& body : {std::string(200000, '['), objects}) {
    expect_error(http_request(port, "POST", "/alerts/rules", body), 400, "invalid_json",
                 "nesting deeper than 32");
    expect_error(http_request(port, "PUT", "/alerts/rules/" + id, body), 400, "invalid_json",
                 "nesting deeper than 32");
    EXPECT_EQ(http_request(port, "GET", "/healthz").status, 200) << "the server must survive";
  }
  // The rule is untouched.
  auto got = json(http_request(port, "GET", "/alerts/rules/" + id).body);
  EXPECT_EQ(got["version"].GetInt64(), 1);
}

// Without alerts.allow_private_targets (the default), as a server exposed to rule authors.
class RulesApiPublicTargets : public RulesApi {
protected:
  config::settings settings() const override {
    auto s = RulesApi::settings();
    s.alerts_allow_private_targets = false;
    s.alerts_allowed_hosts = "";  // any public host
    return s;
  }
};

TEST_F(RulesApiPublicTargets, LiteralNonPublicWebhookTargetsAre400Forbidden) {
  auto [dev, hh] = new_device();
  auto valid = rule_body("device", dev, "power_w_avg", "1m", 10, 9);
  auto with_url = [&](const std::string& url) {
    auto b = valid;
    auto k = std::string("\"webhook_url\":\"");
    auto pos = b.find(k) + k.size();
    return b.substr(0, pos) + url + b.substr(b.find('"', pos));
  };
  const char* denied[] = {"http://169.254.169.254/latest/meta-data", "http://10.0.0.1/hook",
                          "http://[::ffff:127.0.0.1]:8080/hook", "http://[fe80::1]/hook",
                          "http://127.0.0.1:9/hook", "http://2130706433/"};
  for (const char* url : denied) {
    SCOPED_TRACE(url);
    expect_error(http_request(port, "POST", "/alerts/rules", with_url(url)), 400,
                 "webhook_url_forbidden", "webhook_url");
  }
  // Public targets pass: an empty allow-list allows any public host.
  auto id = create_rule(with_url("https://hooks.example.com/x"));
  ASSERT_FALSE(id.empty());
  EXPECT_EQ(http_request(port, "POST", "/alerts/rules", with_url("http://93.184.215.14/x")).status,
            201);
  // PUT is checked the same way and leaves the rule as it was.
  expect_error(http_request(port, "PUT", "/alerts/rules/" + id, with_url(denied[0])), 400,
               "webhook_url_forbidden", "169.254.169.254");
  auto got = json(http_request(port, "GET", "/alerts/rules/" + id).body);
  EXPECT_EQ(std::string(got["webhook_url"].GetString()), "https://hooks.example.com/x");
}

TEST_F(RulesApi, EventsValidatesItsParameters) {
  expect_error(http_request(port, "GET", "/alerts/events?rule_id=nope"), 400, "invalid_rule_id");
  expect_error(http_request(port, "GET", "/alerts/events?since=yesterday"), 400,
               "invalid_since");
  expect_error(http_request(port, "GET", "/alerts/events?limit=0"), 400, "invalid_limit");
  expect_error(http_request(port, "GET", "/alerts/events?limit=5000"), 400, "invalid_limit");
  expect_error(http_request(port, "GET", "/alerts/events?colour=red"), 400, "unknown_parameter");
  auto ok = http_request(port, "GET",
                         "/alerts/events?rule_id=" + random_uuid() +
                             "&since=2026-01-01T00:00:00Z&limit=10");
  ASSERT_EQ(ok.status, 200) << ok.body;
  auto d = json(ok.body);
  ASSERT_TRUE(d["events"].IsArray());
  EXPECT_EQ(d["events"].Size(), 0u);
}

} // namespace
} // namespace joule::rules::test
