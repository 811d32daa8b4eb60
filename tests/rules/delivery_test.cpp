// Delivery policy and signing (pure): which outcomes retry, backoff bounds, headers.
#include <gtest/gtest.h>

#include "rules/notifier.hpp"
#include "rules/payload.hpp"

#include <rapidjson/document.h>

namespace joule::rules {
namespace {

TEST(Signature, MatchesAnIndependentHmac) {
  // python3: hmac.new(b"s3cret", b'a1.1700000000.{"x":1}', hashlib.sha256).hexdigest()
  EXPECT_EQ(sign("s3cret", "a1", 1700000000, "{\"x\":1}"),
            "sha256=e60989ec2e508588caf7c1e52178cfc2cae69dbdccdf9511c166a2039ff17998");
  EXPECT_NE(sign("s3cret", "a1", 1700000001, "{\"x\":1}"),
            sign("s3cret", "a1", 1700000000, "{\"x\":1}"));
}

TEST(Headers, CarryIdTimestampAndSignature) {
  outbox_item item{"a1", "{\"x\":1}", "http://h/", "s3cret", "http://h:80", 3, {"a1"}, true};
  auto h = webhook_headers(item, 1700000000);
  std::map<std::string, std::string> m(h.begin(), h.end());
  EXPECT_EQ(m["X-Joule-Alert-Id"], "a1");
  EXPECT_EQ(m["X-Joule-Timestamp"], "1700000000");
  EXPECT_EQ(m["X-Joule-Signature"],
            "sha256=e60989ec2e508588caf7c1e52178cfc2cae69dbdccdf9511c166a2039ff17998");
}

TEST(Decide, SuccessRetryAndFailure) {
  notifier_config c;
  c.max_attempts = 5;
  c.retry_initial = std::chrono::milliseconds(1000);
  c.retry_max = std::chrono::milliseconds(8000);
  EXPECT_EQ(decide(200, 1, c, 0.5).kind, attempt_record::delivered);
  EXPECT_EQ(decide(204, 1, c, 0.5).kind, attempt_record::delivered);
  for (int status : {0, 429, 500, 502, 503})
    EXPECT_EQ(decide(status, 1, c, 0.5).kind, attempt_record::retry) << status;
  for (int status : {301, 400, 401, 404, 410, -1})
    EXPECT_EQ(decide(status, 1, c, 0.5).kind, attempt_record::failed) << status;
  EXPECT_EQ(decide(503, 5, c, 0.5).kind, attempt_record::failed);  // out of attempts
}

TEST(Decide, RefusedTargetsAreNeverRetried) {
  notifier_config c;
  c.max_attempts = 100;
  // -1: the notifier's mark for target_forbidden, invalid_url, host_not_allowed.
  EXPECT_EQ(decide(-1, 1, c, 0.5).kind, attempt_record::failed);
}

TEST(FailureClass, OnlyClassesAreStoredNeverTheReceiversText) {
  EXPECT_EQ(failure_class(200, ""), "");
  EXPECT_EQ(failure_class(204, ""), "");
  EXPECT_EQ(failure_class(301, ""), "http_3xx");
  EXPECT_EQ(failure_class(404, ""), "http_4xx");
  EXPECT_EQ(failure_class(429, ""), "http_4xx");
  EXPECT_EQ(failure_class(503, ""), "http_5xx");
  EXPECT_EQ(failure_class(999, ""), "http_invalid");
  EXPECT_EQ(failure_class(0, "connect_failed"), "connect_failed");
  EXPECT_EQ(failure_class(0, "timeout"), "timeout");
  EXPECT_EQ(failure_class(-1, "target_forbidden"), "target_forbidden");
  EXPECT_EQ(failure_class(0, ""), "no_response");
}

TEST(Decide, BackoffDoublesWithJitterAndIsCapped) {
  notifier_config c;
  c.max_attempts = 100;
  c.retry_initial = std::chrono::milliseconds(1000);
  c.retry_max = std::chrono::milliseconds(8000);
  EXPECT_EQ(decide(503, 1, c, 0.0).retry_in_ms, 500);
  EXPECT_EQ(decide(503, 1, c, 0.999999).retry_in_ms, 999);
  EXPECT_EQ(decide(503, 2, c, 0.0).retry_in_ms, 1000);
  EXPECT_EQ(decide(503, 3, c, 0.0).retry_in_ms, 2000);
  EXPECT_EQ(decide(503, 10, c, 0.0).retry_in_ms, 4000);  // capped at 8 s, halved by jitter
  EXPECT_LT(decide(503, 60, c, 0.99).retry_in_ms, 8000);
}

} // namespace
} // namespace joule::rules

namespace joule::rules {
namespace {

TEST(AlertmanagerBody, LabelsAnnotationsAndNewestPerIncident) {
  alert_rule rule;
  rule.id = "r1";
  rule.scope_id = "d1";
  rule.household_id = "h1";
  rule.metric = metric_kind::power_w_max;
  rule.threshold = 1000;
  rule.labels["team"] = "energy";
  auto fired = make_notification(rule, transition::fired, "a1", "a1", 0, 5000, 1'000'000, 1'000'000);
  auto resolved =
      make_notification(rule, transition::resolved, "a2", "a1", 60'000'000, 10, 1'000'000, 90'000'000);
  auto body = alertmanager_body({fired.payload, resolved.payload});
  rapidjson::Document d;
  d.Parse(body.c_str());
  ASSERT_TRUE(d.IsArray()) << body;
  ASSERT_EQ(d.Size(), 1u) << body;  // one incident: the newest notification wins
  auto& a = d[0];
  EXPECT_EQ(std::string(a["labels"]["alertname"].GetString()), "joule_power_w_max");
  EXPECT_EQ(std::string(a["labels"]["rule_id"].GetString()), "r1");
  EXPECT_EQ(std::string(a["labels"]["household_id"].GetString()), "h1");
  EXPECT_EQ(std::string(a["labels"]["team"].GetString()), "energy");
  EXPECT_EQ(std::string(a["startsAt"].GetString()), "1970-01-01T00:00:01Z");
  EXPECT_EQ(std::string(a["endsAt"].GetString()), "1970-01-01T00:01:30Z");
  auto only_firing = alertmanager_body({fired.payload});
  EXPECT_EQ(only_firing.find("endsAt"), std::string::npos) << only_firing;
  auto group = group_body("k{x=\"1\"}", {fired.payload, resolved.payload});
  rapidjson::Document g;
  g.Parse(group.c_str());
  ASSERT_TRUE(g.IsObject()) << group;
  EXPECT_EQ(std::string(g["group_key"].GetString()), "k{x=\"1\"}");
  EXPECT_EQ(g["alerts"].Size(), 2u);
}

} // namespace
} // namespace joule::rules
