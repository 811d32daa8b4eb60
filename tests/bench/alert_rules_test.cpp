#include <gtest/gtest.h>

#include <rapidjson/document.h>

#include <algorithm>

#include "bench/alert_rules.hpp"
#include "common/http_client.hpp"
#include "bench/webhook_sink.hpp"

using namespace joule::bench;

namespace {

fleet_ids two_households() {
  fleet_ids ids;
  ids.device_ids = {"00000000-0000-4000-8000-000000000001", "00000000-0000-4000-8000-000000000002",
                    "00000000-0000-4000-8000-000000000003"};
  ids.device_households = {"10000000-0000-4000-8000-000000000001",
                           "10000000-0000-4000-8000-000000000001",
                           "10000000-0000-4000-8000-000000000002"};
  ids.household_ids = {"10000000-0000-4000-8000-000000000001",
                       "10000000-0000-4000-8000-000000000002"};
  return ids;
}

TEST(AlertRules, ProbeRuleJsonHasEveryField) {
  const auto text = alert_rule_json(probe_rule("00000000-0000-4000-8000-00000000000a",
                                               "http://127.0.0.1:9/hook"));
  rapidjson::Document d;
  d.Parse(text.c_str());
  ASSERT_FALSE(d.HasParseError()) << text;
  EXPECT_STREQ(d["scope"].GetString(), "device");
  EXPECT_STREQ(d["scope_id"].GetString(), "00000000-0000-4000-8000-00000000000a");
  EXPECT_STREQ(d["metric"].GetString(), "power_w_max");
  EXPECT_STREQ(d["window"].GetString(), "1m");
  EXPECT_STREQ(d["op"].GetString(), ">");
  EXPECT_DOUBLE_EQ(d["value"].GetDouble(), 1e6);
  EXPECT_EQ(d["cooldown_sec"].GetInt64(), 0);
  EXPECT_STREQ(d["webhook_url"].GetString(), "http://127.0.0.1:9/hook");
  EXPECT_GT(d["webhook_secret"].GetStringLength(), 0u);
  EXPECT_TRUE(d["enabled"].GetBool());
  EXPECT_EQ(d.MemberCount(), 10u);
}

TEST(AlertRules, BackgroundRulesMixScopesAndWindowsAndNeverTrip) {
  const auto ids = two_households();
  int seen[2][2] = {};
  for (uint64_t k = 0; k < 200; ++k) {
    const auto r = background_rule(ids, 7, k, "http://127.0.0.1:9/hook");
    const bool household = r.scope == "household";
    ++seen[household][r.window == "5m"];
    EXPECT_TRUE(r.window == "1m" || r.window == "5m");
    EXPECT_EQ(r.op, ">");
    EXPECT_GE(r.value, 1e12);
    EXPECT_EQ(r.webhook_url, "http://127.0.0.1:9/hook");
    // power_w_max on a household is rejected by the server.
    EXPECT_EQ(r.metric, household ? "power_w_avg" : "power_w_max");
    const auto& pool = household ? ids.household_ids : ids.device_ids;
    EXPECT_NE(std::find(pool.begin(), pool.end(), r.scope_id), pool.end());
  }
  for (auto& scope : seen)
    for (int n : scope)
      EXPECT_GT(n, 20);
  // Deterministic per (seed, k).
  EXPECT_EQ(alert_rule_json(background_rule(ids, 7, 3, "u")),
            alert_rule_json(background_rule(ids, 7, 3, "u")));
}

TEST(AlertRules, ReadsRuleIdAndManagerStatus) {
  std::string id;
  EXPECT_TRUE(read_rule_id(R"({"id":"2afa0000-0000-4000-8000-000000000001","version":1})", id));
  EXPECT_EQ(id, "2afa0000-0000-4000-8000-000000000001");
  EXPECT_FALSE(read_rule_id(R"({"error":{"code":"x"}})", id));
  EXPECT_FALSE(read_rule_id("not json", id));

  bool loaded = false;
  int64_t evaluators = 0;
  EXPECT_TRUE(read_alert_manager_status(
      R"({"db":null,"alerts.manager":{"loaded":true,"evaluators":10001,"load_failures":0}})",
      loaded, evaluators));
  EXPECT_TRUE(loaded);
  EXPECT_EQ(evaluators, 10001);
  EXPECT_FALSE(read_alert_manager_status(R"({"alerts.manager":null})", loaded, evaluators));
  EXPECT_FALSE(read_alert_manager_status(R"({"supervisor":{}})", loaded, evaluators));
}

TEST(AlertRules, ParsesWebhookBody) {
  webhook_fields f;
  ASSERT_TRUE(parse_webhook_body(
      R"({"alert_id":"a1","incident_id":"a1","rule_id":"r1","status":"firing","scope":"device",)"
      R"("scope_id":"s1","observed":5000000.0})", f));
  EXPECT_EQ(f.alert_id, "a1");
  EXPECT_EQ(f.rule_id, "r1");
  EXPECT_EQ(f.scope_id, "s1");
  EXPECT_EQ(f.status, "firing");
  EXPECT_FALSE(parse_webhook_body(R"({"status":"firing"})", f));
  EXPECT_FALSE(parse_webhook_body("[]", f));
}

TEST(AlertRules, ParsesProcFiles) {
  uint64_t ticks = 0;
  // comm with a space and a ')' inside; utime = 1500, stime = 250.
  const std::string stat =
      "4242 (joule (srv) x) S 1 4242 4242 0 -1 4194560 1234 0 0 0 1500 250 0 0 20 0 9 0 100 "
      "1000000 5000 18446744073709551615\n";
  ASSERT_TRUE(parse_proc_stat_cpu_ticks(stat, ticks));
  EXPECT_EQ(ticks, 1750u);
  EXPECT_FALSE(parse_proc_stat_cpu_ticks("4242 (x) S 1 2", ticks));
  EXPECT_FALSE(parse_proc_stat_cpu_ticks("", ticks));

  uint64_t kb = 0;
  ASSERT_TRUE(parse_vm_rss_kb("Name:\tjoule\nVmPeak:\t  900 kB\nVmRSS:\t   123456 kB\nThreads: 9\n", kb));
  EXPECT_EQ(kb, 123456u);
  EXPECT_FALSE(parse_vm_rss_kb("Name:\tjoule\n", kb));
}

TEST(WebhookSink, RecordsPostsAndAnswers200) {
  webhook_sink sink;
  ASSERT_GT(sink.port(), 0);
  http_client client(http_url::parse("http://127.0.0.1:" + std::to_string(sink.port())),
                     std::chrono::seconds(5));
  auto r = client.request("POST", "/joule-bench/webhook",
                          R"({"alert_id":"a1","rule_id":"r1","scope_id":"s1","status":"firing"})");
  EXPECT_EQ(r.status, 200) << r.error;
  // Same keep-alive connection.
  r = client.request("POST", "/joule-bench/webhook",
                     R"({"alert_id":"a2","rule_id":"r2","scope_id":"s2","status":"resolved"})");
  EXPECT_EQ(r.status, 200) << r.error;
  EXPECT_EQ(client.request("GET", "/").status, 405);
  auto got = sink.wait_for("r2", "resolved", std::chrono::seconds(2));
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->body.alert_id, "a2");
  EXPECT_GT(got->system_s, 0);
  EXPECT_FALSE(sink.wait_for("r1", "resolved", std::chrono::milliseconds(50)).has_value());
  EXPECT_EQ(sink.received(), 2u);
}

} // namespace
