// End to end: readings committed to PostgreSQL → bucket feed → evaluator → outbox → webhook
// receiver started by the test. Covers signing, once-per-breach, restarts (no re-fire, no
// lost delivery), receiver outages, slow receivers and live rule changes.
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <future>
#include <map>
#include <set>

#include "rules/webhook_client.hpp"
#include "tests/rules/alerts_fixture.hpp"
#include "tests/rules/webhook_receiver.hpp"

namespace joule::rules::test {
namespace {

using joule::test::http_request;

class Alerts : public AlertsTest {};

// The receiver-side check from rules/README.md, written independently of rules/payload.cpp.
bool signature_valid(const received_webhook& w, const std::string& secret) {
  std::string msg = w.alert_id + "." + w.timestamp + "." + w.body;
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), mac, &len);
  char hex[2 * EVP_MAX_MD_SIZE + 1];
  for (unsigned i = 0; i < len; ++i)
    std::snprintf(hex + 2 * i, 3, "%02x", mac[i]);
  auto now = std::chrono::duration_cast<std::chrono::seconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count();
  bool fresh = std::llabs(now - std::stoll(w.timestamp)) <= 300;
  return fresh && w.signature == "sha256=" + std::string(hex, 2 * len);
}

std::set<std::string> alert_ids(const std::vector<received_webhook>& ws) {
  std::set<std::string> out;
  for (auto& w : ws)
    out.insert(w.alert_id);
  return out;
}

std::string delivery_of(joule::test::pg_test_db& db, const std::string& alert_id) {
  return db.scalar("SELECT delivery || ':' || attempts FROM alert_notifications WHERE alert_id = '" +
                   alert_id + "'");
}

TEST_F(Alerts, BreachFiresOnceSignedAndWithinSeconds) {
  webhook_receiver hook;
  auto [dev, hh] = new_device();
  auto rule_id = create_rule(
      rule_body("device", dev, "power_w_max", "1m", 1000, hook.port(), "\"cooldown_sec\":3600"));
  wait_feed_cycles(2);  // the evaluator is subscribed
  reading(dev, hh, 500, 1);
  auto committed = std::chrono::steady_clock::now();
  reading(dev, hh, 5000, 1);
  ASSERT_TRUE(eventually([&] { return hook.count() >= 1; }));
  auto latency = hook.requests()[0].at - committed;
  std::printf("reading committed -> webhook received: %.0f ms\n",
              std::chrono::duration<double, std::milli>(latency).count());
  EXPECT_LT(latency, std::chrono::seconds(3));
  // One feed, two consumers: once the start-up catch-up (read from the database) is done,
  // the evaluators are fed from the live tail's snapshots.
  EXPECT_TRUE(eventually([] {
    return metrics::global()
               .get_counter("joule_alert_feed_live_cycles_total",
                            "Bucket feed cycles served from the live tail's snapshot (no query)")
               .value() > 0u;
  }));

  auto w = hook.requests()[0];
  EXPECT_TRUE(signature_valid(w, secret)) << w.signature;
  EXPECT_FALSE(signature_valid(w, "another-secret"));
  auto p = json(w.body);
  EXPECT_EQ(std::string(p["alert_id"].GetString()), w.alert_id);
  EXPECT_EQ(std::string(p["rule_id"].GetString()), rule_id);
  EXPECT_EQ(std::string(p["status"].GetString()), "firing");
  EXPECT_EQ(std::string(p["scope"].GetString()), "device");
  EXPECT_EQ(std::string(p["scope_id"].GetString()), dev);
  EXPECT_EQ(std::string(p["metric"].GetString()), "power_w_max");
  EXPECT_EQ(std::string(p["window"].GetString()), "1m");
  EXPECT_EQ(std::string(p["op"].GetString()), ">");
  EXPECT_EQ(p["threshold"].GetDouble(), 1000);
  EXPECT_EQ(p["observed"].GetDouble(), 5000);
  EXPECT_TRUE(p.HasMember("bucket") && p.HasMember("fired_at"));

  // The breach goes on: more readings over several evaluation cycles, still one alert.
  for (int i = 0; i < 3; ++i) {
    reading(dev, hh, 6000 + i, 1);
    wait_feed_cycles(2);
  }
  EXPECT_EQ(hook.count(), 1u);
  ASSERT_TRUE(eventually([&] { return delivery_of(*db, w.alert_id) == "delivered:1"; }))
      << delivery_of(*db, w.alert_id);

  auto ev = http_request(port, "GET", "/alerts/events?rule_id=" + rule_id);
  ASSERT_EQ(ev.status, 200);
  auto e = json(ev.body);
  ASSERT_EQ(e["events"].Size(), 1u) << ev.body;
  EXPECT_EQ(std::string(e["events"][0]["status"].GetString()), "firing");
  EXPECT_EQ(std::string(e["events"][0]["delivery"]["status"].GetString()), "delivered");
  EXPECT_EQ(e["events"][0]["delivery"]["attempts"].GetInt(), 1);
  // Counted by scope and metric: a series per rule would grow without bound.
  auto metrics_text = http_request(port, "GET", "/metrics").body;
  EXPECT_NE(metrics_text.find("joule_alerts_fired_total{scope=\"device\",metric=\"power_w_max\"}"),
            std::string::npos);
  EXPECT_EQ(metrics_text.find("joule_alerts_fired_total{rule_id="), std::string::npos);
}

TEST_F(Alerts, EveryScopeAndWindowCombinationFires) {
  webhook_receiver hook;
  auto [d1, h1] = new_device();
  auto [d2, h2] = new_device();
  auto [d3, h3] = new_device();
  auto [d4, h4] = new_device();
  std::map<std::string, std::string> rule_of;  // rule id → combination
  rule_of[create_rule(rule_body("device", d1, "power_w_max", "1m", 1000, hook.port()))] = "d1m";
  rule_of[create_rule(rule_body("device", d2, "energy_wh_sum", "5m", 10, hook.port()))] = "d5m";
  rule_of[create_rule(rule_body("household", h3, "energy_wh_sum", "1m", 10, hook.port()))] =
      "h1m";
  rule_of[create_rule(rule_body("household", h4, "energy_wh_sum", "5m", 10, hook.port()))] =
      "h5m";
  wait_feed_cycles(2);
  reading(d1, h1, 5000, 1);
  // Energy sums: two readings that only breach together (the sum is what is compared).
  for (auto [d, h] : {std::pair{d2, h2}, std::pair{d3, h3}, std::pair{d4, h4}}) {
    reading(d, h, 100, 6);
    reading(d, h, 100, 6);
  }
  ASSERT_TRUE(eventually([&] { return hook.count() >= 4; })) << hook.count();
  std::set<std::string> fired;
  for (auto& w : hook.requests()) {
    auto p = json(w.body);
    fired.insert(rule_of[p["rule_id"].GetString()]);
  }
  EXPECT_EQ(fired, (std::set<std::string>{"d1m", "d5m", "h1m", "h5m"}));
}

TEST_F(Alerts, RestartNeitherRefiresNorForgetsTheFiringAlert) {
  webhook_receiver hook;
  auto [dev, hh] = new_device();
  auto rule_id = create_rule(rule_body("device", dev, "power_w_max", "1m", 1000, hook.port()));
  wait_feed_cycles(2);
  reading(dev, hh, 5000, 1);
  ASSERT_TRUE(eventually([&] { return hook.count() == 1; }));
  stop_app();
  EXPECT_EQ(db->scalar("SELECT phase FROM alert_rule_state WHERE rule_id = '" + rule_id + "'"),
            "firing");
  start_app();
  reading(dev, hh, 7000, 1);  // still breaching, same bucket and the next
  wait_feed_cycles(5);
  EXPECT_EQ(hook.count(), 1u);
  EXPECT_EQ(db->scalar("SELECT count(*) FROM alert_notifications WHERE rule_id = '" + rule_id +
                       "'"),
            "1");
  EXPECT_EQ(db->scalar("SELECT phase FROM alert_rule_state WHERE rule_id = '" + rule_id + "'"),
            "firing");
}

TEST_F(Alerts, ReceiverDownThenUpGetsEveryAlertExactlyOncePerAlertId) {
  auto hook_port = reserve_port();  // nothing listens: connection refused
  std::vector<std::string> rules;
  std::vector<std::pair<std::string, std::string>> devices;
  for (int i = 0; i < 3; ++i) {
    devices.push_back(new_device());
    rules.push_back(create_rule(
        rule_body("device", devices.back().first, "power_w_max", "1m", 1000, hook_port)));
  }
  std::string rule_array = "{" + rules[0] + "," + rules[1] + "," + rules[2] + "}";
  wait_feed_cycles(2);
  for (auto& [d, h] : devices)
    reading(d, h, 5000, 1);
  // Every notification is stored and retried while the receiver is down.
  ASSERT_TRUE(eventually([&] {
    return db->scalar("SELECT count(*) FROM alert_notifications WHERE delivery = 'pending' "
                      "AND attempts >= 2 AND last_error IS NOT NULL "
                      "AND rule_id = ANY('" + rule_array + "'::uuid[])") == "3";
  })) << db->scalar("SELECT string_agg(delivery || attempts, ',') FROM alert_notifications");
  webhook_receiver hook{hook_port};
  hook.answer_with(503);  // up, but failing for a while: retried too
  ASSERT_TRUE(eventually([&] { return alert_ids(hook.requests()).size() == 3; }));
  hook.answer_with(200);
  ASSERT_TRUE(eventually([&] {
    return db->scalar("SELECT count(*) FROM alert_notifications WHERE delivery = 'delivered' "
                      "AND rule_id = ANY('" + rule_array + "'::uuid[])") == "3";
  }));
  auto got = hook.requests();
  auto ids = alert_ids(got);
  EXPECT_EQ(ids.size(), 3u);  // dedup by alert id: one per alert
  std::set<std::string> ok_ids;
  for (auto& w : got) {
    EXPECT_TRUE(signature_valid(w, secret));
    if (w.answered == 200)
      ok_ids.insert(w.alert_id);
  }
  EXPECT_EQ(ok_ids, ids);
  EXPECT_GT(got.size(), 3u);  // retries reused the same ids
  EXPECT_EQ(db->scalar("SELECT count(*) FROM alert_notifications WHERE attempts >= 3 "
                       "AND rule_id = ANY('" + rule_array + "'::uuid[])"),
            "3");
}

TEST_F(Alerts, ServerStoppedMidDeliveryDeliversAfterRestart) {
  webhook_receiver hook;
  hook.hold(true);  // the request arrives and hangs
  auto [dev, hh] = new_device();
  create_rule(rule_body("device", dev, "power_w_max", "1m", 1000, hook.port()));
  wait_feed_cycles(2);
  reading(dev, hh, 5000, 1);
  ASSERT_TRUE(eventually([&] { return hook.count() == 1; }));
  auto alert_id = hook.requests()[0].alert_id;
  stop_app();  // mid-delivery: no answer was read, nothing was recorded
  EXPECT_EQ(delivery_of(*db, alert_id), "pending:1");
  hook.hold(false);
  start_app();  // a new server on the same database; the old lease runs out (7 s here)
  ASSERT_TRUE(eventually([&] { return delivery_of(*db, alert_id) == "delivered:2"; },
                         std::chrono::seconds(20)))
      << delivery_of(*db, alert_id);
  auto got = hook.requests();
  ASSERT_GE(got.size(), 2u);
  EXPECT_EQ(got.back().alert_id, alert_id);  // same id on redelivery
  EXPECT_EQ(got.back().answered, 200);
  EXPECT_EQ(alert_ids(got).size(), 1u);
}

TEST_F(Alerts, SlowReceiverDelaysOnlyItsOwnDeliveries) {
  webhook_receiver slow, fast;
  slow.hold(true);
  auto [d1, h1] = new_device();
  auto [d2, h2] = new_device();
  create_rule(rule_body("device", d1, "power_w_max", "1m", 1000, slow.port()));
  create_rule(rule_body("device", d2, "power_w_max", "1m", 1000, fast.port()));
  wait_feed_cycles(2);
  reading(d1, h1, 5000, 1);
  ASSERT_TRUE(eventually([&] { return slow.count() == 1; }));
  auto t = std::chrono::steady_clock::now();
  reading(d2, h2, 5000, 1);
  ASSERT_TRUE(eventually([&] { return fast.count() == 1; }, std::chrono::seconds(5)));
  EXPECT_LT(fast.requests()[0].at - t, std::chrono::seconds(2));
  EXPECT_EQ(fast.requests()[0].answered, 200);
  slow.hold(false);
}

TEST_F(Alerts, RuleChangesTakeEffectWithoutRestart) {
  webhook_receiver hook;
  auto [dev, hh] = new_device();
  auto body = [&](double value, bool enabled) {
    return rule_body("device", dev, "power_w_max", "1m", value, hook.port(),
                     std::string("\"enabled\":") + (enabled ? "true" : "false"));
  };
  auto id = create_rule(body(10000, true));
  // The feed skips cycles when no rule is enabled; a quiet rule keeps it (and the cycle
  // counter these assertions wait on) going while the rule under test is disabled.
  auto quiet = new_device();
  create_rule(rule_body("device", quiet.first, "power_w_max", "1m", 1e9, hook.port()));
  wait_feed_cycles(2);
  reading(dev, hh, 5000, 1);
  wait_feed_cycles(5);
  EXPECT_EQ(hook.count(), 0u);  // below the threshold
  // Lower the threshold but disable the rule: still nothing.
  ASSERT_EQ(http_request(port, "PUT", "/alerts/rules/" + id, body(1000, false)).status, 200);
  wait_feed_cycles(5);
  EXPECT_EQ(hook.count(), 0u);
  // Enable it: the same reading now breaches.
  ASSERT_EQ(http_request(port, "PUT", "/alerts/rules/" + id, body(1000, true)).status, 200);
  ASSERT_TRUE(eventually([&] { return hook.count() == 1; }, std::chrono::seconds(5)));
  // Deleted: its evaluator is gone, a new breach on a new device's rule still works.
  ASSERT_EQ(http_request(port, "DELETE", "/alerts/rules/" + id).status, 204);
  auto [dev2, hh2] = new_device();
  create_rule(rule_body("device", dev2, "power_w_max", "1m", 1000, hook.port()));
  wait_feed_cycles(2);
  reading(dev2, hh2, 5000, 1);
  ASSERT_TRUE(eventually([&] { return hook.count() == 2; }, std::chrono::seconds(5)));
}

// The client on its own: it resolves, filters, and connects only to what passed.
TEST(WebhookClient, RefusesNonPublicResolvedAddressesUnlessAllowed) {
  webhook_receiver hook;
  webhook_client client;
  auto send = [&](const std::string& url, bool allow_private) {
    std::promise<webhook_response> answer;
    auto f = answer.get_future();
    webhook_request req;
    req.url = url;
    req.body = "{}";
    req.timeout = std::chrono::seconds(3);
    req.allow_private_targets = allow_private;
    client.post(std::move(req), [&answer](webhook_response r) { answer.set_value(std::move(r)); });
    return f.get();
  };
  auto port = std::to_string(hook.port());
  for (const std::string& url : {"http://localhost:" + port + "/x",
                                 "http://127.0.0.1:" + port + "/x",
                                 "http://127.1:" + port + "/x"}) {
    auto r = send(url, false);
    EXPECT_EQ(r.status, 0) << url;
    EXPECT_EQ(r.error, "target_forbidden") << url;
    EXPECT_NE(r.detail.find("loopback"), std::string::npos) << r.detail;
  }
  EXPECT_EQ(hook.count(), 0u) << "nothing may reach a refused target";
  auto ok = send("http://localhost:" + port + "/x", true);
  EXPECT_EQ(ok.status, 200) << ok.error << " " << ok.detail;
  ASSERT_EQ(hook.count(), 1u);
  auto refused = send("http://127.0.0.1:" + std::to_string(reserve_port()) + "/x", true);
  EXPECT_EQ(refused.error, "connect_failed");
}

// The default policy on a server whose receiver is reached through a name: the name passes at
// write time (it is not a literal), and every delivery attempt refuses what it resolves to.
class AlertsPublicTargetsOnly : public AlertsTest {
protected:
  config::settings settings() const override {
    auto s = AlertsTest::settings();
    s.alerts_allow_private_targets = false;
    return s;
  }
};

TEST_F(AlertsPublicTargetsOnly, AHostNameResolvingToLoopbackIsNeverContacted) {
  webhook_receiver hook;
  auto [dev, hh] = new_device();
  auto body = rule_body("device", dev, "power_w_max", "1m", 1000, hook.port());
  auto literal = http_request(port, "POST", "/alerts/rules", body);
  EXPECT_EQ(literal.status, 400) << literal.body;
  EXPECT_NE(literal.body.find("webhook_url_forbidden"), std::string::npos) << literal.body;
  auto host = body.find("127.0.0.1");
  ASSERT_NE(host, std::string::npos);
  auto rule_id = create_rule(body.replace(host, 9, "localhost"));
  ASSERT_FALSE(rule_id.empty());
  wait_feed_cycles(2);
  reading(dev, hh, 5000, 1);
  // Refused once and for good: no retries (only a configuration change could make it pass).
  ASSERT_TRUE(eventually([&] {
    return db->scalar("SELECT delivery || ':' || attempts || ':' || COALESCE(last_error, '') "
                      "FROM alert_notifications WHERE rule_id = '" + rule_id + "'") ==
           "failed:1:target_forbidden";
  })) << db->scalar("SELECT string_agg(delivery || ':' || attempts || ':' || "
                    "COALESCE(last_error, ''), ',') FROM alert_notifications WHERE rule_id = '" +
                    rule_id + "'");
  EXPECT_EQ(hook.count(), 0u);
  auto ev = http_request(port, "GET", "/alerts/events?rule_id=" + rule_id);
  ASSERT_EQ(ev.status, 200);
  auto e = json(ev.body);
  ASSERT_EQ(e["events"].Size(), 1u) << ev.body;
  const auto& d = e["events"][0]["delivery"];
  EXPECT_EQ(std::string(d["status"].GetString()), "failed");
  EXPECT_EQ(std::string(d["last_error"].GetString()), "target_forbidden");
  EXPECT_TRUE(d["last_http_status"].IsNull());
  // The API says what class of failure, not what the target's network looks like.
  EXPECT_EQ(ev.body.find("127.0.0.1"), std::string::npos) << ev.body;
  EXPECT_EQ(ev.body.find("loopback"), std::string::npos) << ev.body;
}

TEST_F(Alerts, TenThousandRulesStayCheapAndFast) {
  webhook_receiver hook;
  const std::string url = "http://127.0.0.1:" + std::to_string(hook.port()) + "/hook";
  // 10,000 devices in 1,000 households, each with a reading in the open bucket, and 10,000
  // rules over every scope and window that never breach (the worst case for the feed: every
  // evaluator gets a batch every cycle).
  db->exec("INSERT INTO devices (id, household_id) SELECT md5('scale-d' || i)::uuid, "
           "md5('scale-h' || (i / 10))::uuid FROM generate_series(0, 9999) i");
  db->exec("INSERT INTO telemetry (ts, device_id, household_id, power_w, energy_wh) "
           "SELECT now(), md5('scale-d' || i)::uuid, md5('scale-h' || (i / 10))::uuid, 100, 1 "
           "FROM generate_series(0, 9999) i");
  db->exec("INSERT INTO alert_rules (scope, scope_id, metric, window_minutes, op, threshold, "
           "webhook_url, webhook_secret) "
           "SELECT 'device', md5('scale-d' || i)::uuid, 'power_w_max', 1 + 4 * (i % 2), '>', 1e9, '" +
           url + "', 's' FROM generate_series(0, 8999) i "
           "UNION ALL SELECT 'household', md5('scale-h' || i)::uuid, 'energy_wh_sum', "
           "1 + 4 * (i % 2), '>', 1e9, '" + url + "', 's' FROM generate_series(0, 999) i");
  db->exec("INSERT INTO alert_rule_state (rule_id) SELECT id FROM alert_rules "
           "ON CONFLICT DO NOTHING");
  auto [dev, hh] = new_device();
  create_rule(rule_body("device", dev, "power_w_max", "1m", 1000, hook.port()));
  stop_app();
  auto started = std::chrono::steady_clock::now();
  start_app();
  auto& evaluators = metrics::global().get_gauge("joule_alert_evaluators",
                                                 "Running alert evaluators (enabled rules)");
  ASSERT_TRUE(eventually([&] { return evaluators.value() >= 10001; }, std::chrono::seconds(30)))
      << evaluators.value();
  std::printf("10,001 rules loaded and evaluators spawned in %.0f ms\n",
              std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started)
                  .count());
  wait_feed_cycles(10);
  auto cycle = metrics::global()
                   .get_gauge("joule_alert_feed_last_cycle_seconds",
                              "Duration of the latest bucket feed cycle")
                   .value();
  std::printf("feed cycle with 10,001 rules: %.1f ms\n", cycle * 1000);
  EXPECT_LT(cycle, 1.0);
  auto committed = std::chrono::steady_clock::now();
  reading(dev, hh, 5000, 1);
  ASSERT_TRUE(eventually([&] { return hook.count() >= 1; }));
  auto latency = hook.requests()[0].at - committed;
  std::printf("with 10,001 rules, reading committed -> webhook received: %.0f ms\n",
              std::chrono::duration<double, std::milli>(latency).count());
  EXPECT_LT(latency, std::chrono::seconds(3));
  EXPECT_EQ(hook.count(), 1u);  // none of the 10,000 quiet rules fired
}

} // namespace
} // namespace joule::rules::test
