// Issue 10 end to end (real HTTP, PostgreSQL and webhook receivers): silent devices and
// households, the no_data policy, and repeat notifications.
#include <set>

#include "tests/rules/alerts_fixture.hpp"
#include "tests/rules/webhook_receiver.hpp"

namespace joule::rules::test {
namespace {

using joule::test::http_request;

class Alerting : public AlertsTest {};

std::string silence_body(const std::string& scope, const std::string& id, double seconds,
                         std::uint16_t hook_port, const std::string& secret) {
  return "{\"scope\":\"" + scope + "\",\"scope_id\":\"" + id +
         "\",\"metric\":\"silence_sec\",\"op\":\">\",\"value\":" + std::to_string(seconds) +
         ",\"cooldown_sec\":0,\"webhook_url\":\"http://127.0.0.1:" + std::to_string(hook_port) +
         "/hook\",\"webhook_secret\":\"" + secret + "\"}";
}

std::vector<rapidjson::Document> bodies_with(const webhook_receiver& hook, const std::string& key,
                                             const std::string& value) {
  std::vector<rapidjson::Document> out;
  for (auto& w : hook.requests()) {
    auto d = json(w.body);
    if (d.IsObject() && d.HasMember(key.c_str()) && d[key.c_str()].IsString() &&
        value == d[key.c_str()].GetString())
      out.push_back(std::move(d));
  }
  return out;
}

std::size_t count_status(const webhook_receiver& hook, const std::string& rule_id,
                         const std::string& status) {
  std::size_t n = 0;
  for (auto& d : bodies_with(hook, "rule_id", rule_id))
    n += std::string(d["status"].GetString()) == status;
  return n;
}

TEST_F(Alerting, SilentDeviceAndHouseholdFireWithinSecondsAndResolveOnAReading) {
  webhook_receiver hook;
  auto [dev, hh] = new_device();
  auto [quiet, quiet_hh] = new_device();
  reading(dev, hh, 100, 1);
  reading(quiet, quiet_hh, 100, 1);
  const auto last = std::chrono::steady_clock::now();
  auto dev_rule = create_rule(silence_body("device", dev, 3, hook.port(), secret));
  auto hh_rule = create_rule(silence_body("household", quiet_hh, 3, hook.port(), secret));
  // Silence > 3 s: both fire once the threshold passes, well within 10 s of it.
  ASSERT_TRUE(eventually([&] {
    return count_status(hook, dev_rule, "firing") == 1 && count_status(hook, hh_rule, "firing") == 1;
  }, std::chrono::seconds(20))) << hook.count();
  auto fired_after = std::chrono::steady_clock::now() - last;
  std::printf("device silent -> alert: %.1f s after the last reading (threshold 3 s)\n",
              std::chrono::duration<double>(fired_after).count());
  EXPECT_LT(fired_after, std::chrono::seconds(13));
  auto firing = bodies_with(hook, "rule_id", dev_rule);
  ASSERT_EQ(firing.size(), 1u);
  EXPECT_EQ(std::string(firing[0]["metric"].GetString()), "silence_sec");
  EXPECT_TRUE(firing[0]["window"].IsNull());
  EXPECT_GT(firing[0]["observed"].GetDouble(), 3.0);
  EXPECT_LT(firing[0]["observed"].GetDouble(), 13.0);

  // Still silent: nothing more. Then the device reports: resolved, same incident.
  wait_feed_cycles(3);
  EXPECT_EQ(count_status(hook, dev_rule, "firing"), 1u);
  EXPECT_EQ(count_status(hook, dev_rule, "resolved"), 0u);
  reading(dev, hh, 100, 1);
  ASSERT_TRUE(eventually([&] { return count_status(hook, dev_rule, "resolved") == 1; }));
  auto all = bodies_with(hook, "rule_id", dev_rule);
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(std::string(all[1]["incident_id"].GetString()),
            std::string(all[0]["incident_id"].GetString()));
  // Any device of the household ends the household's silence.
  auto [other, same_hh] = new_device(quiet_hh);
  reading(other, same_hh, 10, 1);
  ASSERT_TRUE(eventually([&] { return count_status(hook, hh_rule, "resolved") == 1; }));

  auto metrics_text = http_request(port, "GET", "/metrics").body;
  EXPECT_NE(metrics_text.find("joule_alerts_fired_total{scope=\"household\",metric=\"silence_sec\"}"),
            std::string::npos);
}

TEST_F(Alerting, SilenceSecWithAWindowIsA400) {
  auto [dev, hh] = new_device();
  auto body = silence_body("device", dev, 300, 9, secret);
  body.insert(body.size() - 1, ",\"window\":\"1m\"");
  auto r = http_request(port, "POST", "/alerts/rules", body);
  EXPECT_EQ(r.status, 400) << r.body;
  auto d = json(r.body);
  ASSERT_TRUE(d.IsObject() && d.HasMember("error")) << r.body;
  EXPECT_EQ(std::string(d["error"]["code"].GetString()), "invalid_window");
  auto bad = rule_body("device", dev, "power_w_max", "1m", 1, 9, "\"no_data\":\"sometimes\"");
  r = http_request(port, "POST", "/alerts/rules", bad);
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_NE(r.body.find("invalid_no_data"), std::string::npos) << r.body;
}

// The breach is written into the minute that closed last; the minute after it closes with no
// reading. Runs at any time of day; waits at most about a minute for that minute to close.
TEST_F(Alerting, NoDataResolveResolvesWhenTheDeviceGoesQuietAndKeepDoesNot) {
  webhook_receiver hook;
  // Start well inside a minute (the previous minute closed, the current one has time left).
  ASSERT_TRUE(eventually([&] {
    auto sec = std::stoi(db->scalar("SELECT extract(second from now())::int"));
    return sec >= 4 && sec <= 45;
  }, std::chrono::seconds(30)));
  auto [dev, hh] = new_device();
  auto [dev2, hh2] = new_device();
  const std::string prev_minute = "date_trunc('minute', now()) - interval '30 seconds'";
  reading(dev, hh, 5000, 1, prev_minute);
  reading(dev2, hh2, 5000, 1, prev_minute);
  auto resolving = create_rule(rule_body("device", dev, "power_w_max", "1m", 1000, hook.port(),
                                         "\"no_data\":\"resolve\",\"cooldown_sec\":0"));
  auto keeping = create_rule(rule_body("device", dev2, "power_w_max", "1m", 1000, hook.port(),
                                       "\"cooldown_sec\":0"));
  ASSERT_TRUE(eventually([&] {
    return count_status(hook, resolving, "firing") == 1 && count_status(hook, keeping, "firing") == 1;
  })) << hook.count();
  // The current minute closes without readings: resolved (observed null), keep stays firing.
  ASSERT_TRUE(eventually([&] { return count_status(hook, resolving, "resolved") == 1; },
                         std::chrono::seconds(75)));
  auto res = bodies_with(hook, "rule_id", resolving);
  ASSERT_EQ(res.size(), 2u);
  EXPECT_TRUE(res[1]["observed"].IsNull());
  wait_feed_cycles(3);
  EXPECT_EQ(count_status(hook, keeping, "resolved"), 0u);
  EXPECT_EQ(db->scalar("SELECT phase FROM alert_rule_state WHERE rule_id = '" + keeping + "'"),
            "firing");
  auto ev = json(http_request(port, "GET", "/alerts/events?rule_id=" + resolving).body);
  ASSERT_EQ(ev["events"].Size(), 2u);
  EXPECT_TRUE(ev["events"][0]["observed"].IsNull());
}

TEST_F(Alerting, RepeatsKeepTheIncidentWithNewAlertIdsAndSurviveARestart) {
  webhook_receiver hook;
  auto [dev, hh] = new_device();
  auto rule_id = create_rule(rule_body("device", dev, "power_w_max", "1m", 1000, hook.port(),
                                       "\"repeat_interval_sec\":1"));
  wait_feed_cycles(2);
  reading(dev, hh, 5000, 1);
  ASSERT_TRUE(eventually([&] { return count_status(hook, rule_id, "firing") >= 3; }))
      << hook.count();
  auto sent = bodies_with(hook, "rule_id", rule_id);
  std::set<std::string> ids;
  std::set<int> repeats;
  for (auto& d : sent) {
    EXPECT_EQ(std::string(d["incident_id"].GetString()),
              std::string(sent[0]["incident_id"].GetString()));
    repeats.insert(d["repeat"].GetInt());
    ids.insert(d["alert_id"].GetString());
  }
  EXPECT_EQ(ids.size(), sent.size());  // a repeat is news, not a retry
  EXPECT_EQ(repeats.size(), sent.size());
  EXPECT_TRUE(repeats.count(0) && repeats.count(1) && repeats.count(2));
  // After a restart the repeats go on from the stored count.
  stop_app();
  auto before = count_status(hook, rule_id, "firing");
  start_app();
  ASSERT_TRUE(eventually([&] { return count_status(hook, rule_id, "firing") >= before + 1; }));
  auto later = bodies_with(hook, "rule_id", rule_id);
  EXPECT_GE(later.back()["repeat"].GetInt(), static_cast<int>(before));
  EXPECT_EQ(std::string(later.back()["incident_id"].GetString()),
            std::string(sent[0]["incident_id"].GetString()));
}

std::string in_seconds(joule::test::pg_test_db& db, int s) {
  return db.scalar("SELECT to_char((now() + interval '" + std::to_string(s) +
                   " seconds') AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')");
}

TEST_F(Alerting, SilenceSuppressesThenReleasesOnceWhenItEnds) {
  webhook_receiver hook;
  auto [dev, hh] = new_device();
  reading(dev, hh, 100, 1);
  auto silence = http_request(port, "POST", "/alerts/silences",
                              "{\"matchers\":{\"scope_id\":\"" + dev +
                                  "\",\"team\":\"energy\"},\"ends_at\":\"" + in_seconds(*db, 6) +
                                  "\",\"comment\":\"maintenance\"}");
  ASSERT_EQ(silence.status, 201) << silence.body;
  auto sid = std::string(json(silence.body)["id"].GetString());
  auto body = silence_body("device", dev, 1, hook.port(), secret);
  body.insert(body.size() - 1, ",\"labels\":{\"team\":\"energy\"}");
  auto rule_id = create_rule(body);
  // Fires while silenced: kept as history with "silenced": true, nothing sent.
  std::string incident;
  ASSERT_TRUE(eventually([&] {
    auto ev = json(http_request(port, "GET", "/alerts/events?rule_id=" + rule_id).body);
    if (!ev.IsObject() || ev["events"].Size() == 0)
      return false;
    incident = ev["events"][0]["incident_id"].GetString();
    return ev["events"][0]["silenced"].GetBool();
  })) << "no silenced event";
  EXPECT_EQ(hook.count(), 0u);
  EXPECT_EQ(http_request(port, "GET", "/alerts/silences/" + sid).status, 200);
  EXPECT_NE(http_request(port, "GET", "/alerts/silences").body.find(sid), std::string::npos);
  // The silence ends with the alert still firing: notified once, same incident.
  ASSERT_TRUE(eventually([&] { return hook.count() >= 1; }, std::chrono::seconds(15)));
  wait_feed_cycles(5);
  ASSERT_EQ(hook.count(), 1u);
  auto sent = json(hook.requests()[0].body);
  EXPECT_EQ(std::string(sent["status"].GetString()), "firing");
  EXPECT_EQ(std::string(sent["incident_id"].GetString()), incident);
  EXPECT_NE(hook.requests()[0].alert_id, incident);  // new alert id: not a retry

  // A silence deleted early: 204, then gone.
  auto other = http_request(port, "POST", "/alerts/silences",
                            "{\"matchers\":{\"household_id\":\"" + hh + "\"},\"ends_at\":\"" +
                                in_seconds(*db, 3600) + "\"}");
  ASSERT_EQ(other.status, 201) << other.body;
  auto oid = std::string(json(other.body)["id"].GetString());
  EXPECT_EQ(http_request(port, "DELETE", "/alerts/silences/" + oid).status, 204);
  EXPECT_EQ(http_request(port, "GET", "/alerts/silences/" + oid).status, 404);
  EXPECT_EQ(http_request(port, "DELETE", "/alerts/silences/" + oid).status, 404);
  // Bad silences are 400s naming the field.
  auto bad = http_request(port, "POST", "/alerts/silences",
                          "{\"matchers\":{},\"ends_at\":\"" + in_seconds(*db, 60) + "\"}");
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.body.find("invalid_matchers"), std::string::npos) << bad.body;
  bad = http_request(port, "POST", "/alerts/silences",
                     "{\"matchers\":{\"team\":\"x\"},\"ends_at\":\"2001-01-01T00:00:00Z\"}");
  EXPECT_NE(bad.body.find("invalid_ends_at"), std::string::npos) << bad.body;
}

// A breach in a bucket that closed while the server was down (and that is older than the
// newest closed bucket, the only one live cycles read) is evaluated after the start.
TEST_F(Alerting, RestartDuringABreachNotifiesItAfterStart) {
  webhook_receiver hook;
  auto [dev, hh] = new_device();
  // Household 1m rules read raw rows only: no rollup refresh timing in the way.
  auto rule_id = create_rule(rule_body("household", hh, "energy_wh_sum", "1m", 10, hook.port()));
  wait_feed_cycles(2);
  stop_app();
  reading(dev, hh, 100, 25, "date_trunc('minute', now()) - interval '150 seconds'");
  start_app();
  ASSERT_TRUE(eventually([&] { return hook.count() >= 1; })) << "the breach was lost";
  auto p = json(hook.requests()[0].body);
  EXPECT_EQ(std::string(p["rule_id"].GetString()), rule_id);
  EXPECT_EQ(std::string(p["status"].GetString()), "firing");
  EXPECT_EQ(p["observed"].GetDouble(), 25);
}

TEST_F(Alerting, RedeliverSendsAFailedNotificationAgain) {
  webhook_receiver hook;
  hook.answer_with(400);  // not retried: failed at once
  auto [dev, hh] = new_device();
  reading(dev, hh, 100, 1);
  auto rule_id = create_rule(silence_body("device", dev, 1, hook.port(), secret));
  std::string alert_id;
  ASSERT_TRUE(eventually([&] {
    auto ev = json(http_request(port, "GET", "/alerts/events?rule_id=" + rule_id).body);
    if (!ev.IsObject() || ev["events"].Size() == 0)
      return false;
    alert_id = ev["events"][0]["alert_id"].GetString();
    return std::string(ev["events"][0]["delivery"]["status"].GetString()) == "failed";
  })) << "the notification did not fail";
  ASSERT_EQ(hook.count(), 1u);
  // The receiver was fixed by moving it, and the rule's secret rotated, after the failure:
  // the redelivery goes to the rule's current webhook, signed with the new secret.
  webhook_receiver moved;
  db->exec("UPDATE alert_rules SET webhook_secret = 'rotated-after-failure', webhook_url = "
           "'http://127.0.0.1:" + std::to_string(moved.port()) + "/moved' WHERE id = '" +
           rule_id + "'");
  auto r = http_request(port, "POST", "/alerts/events/" + alert_id + "/redeliver");
  ASSERT_EQ(r.status, 202) << r.body;
  ASSERT_TRUE(eventually([&] {
    return db->scalar("SELECT delivery FROM alert_notifications WHERE alert_id = '" + alert_id +
                      "'") == "delivered";
  }));
  EXPECT_EQ(hook.count(), 1u);  // not the old target
  ASSERT_EQ(moved.count(), 1u);
  EXPECT_EQ(moved.requests()[0].alert_id, alert_id);  // the same notification, again
  EXPECT_EQ(moved.requests()[0].target, "/moved");
  EXPECT_EQ(db->scalar("SELECT webhook_secret FROM alert_notifications WHERE alert_id = '" +
                       alert_id + "'"),
            "rotated-after-failure");
  // Only failed notifications: a delivered one is a 409, unknown ids 404, bad ids 400.
  r = http_request(port, "POST", "/alerts/events/" + alert_id + "/redeliver");
  EXPECT_EQ(r.status, 409) << r.body;
  EXPECT_NE(r.body.find("not_failed"), std::string::npos);
  EXPECT_EQ(http_request(port, "POST", "/alerts/events/" + random_uuid() + "/redeliver").status, 404);
  EXPECT_EQ(http_request(port, "POST", "/alerts/events/x/redeliver").status, 400);
}

TEST_F(Alerting, RetentionDeletesOldNotificationsButNeverPendingOnes) {
  auto old_row = [&](const std::string& delivery) {
    auto id = random_uuid();
    db->exec("INSERT INTO alert_notifications (alert_id, incident_id, rule_id, status, bucket, "
             "observed, payload, webhook_url, webhook_secret, destination, created_at, delivery, "
             "next_attempt_at) VALUES ('" + id + "', '" + id + "', '" + random_uuid() +
             "', 'firing', now(), 1, '{}', 'http://127.0.0.1:9/', 's', 'http://127.0.0.1:9', "
             "now() - interval '31 days', '" + delivery + "', now() + interval '1 day')");
    return id;
  };
  auto old_delivered = old_row("delivered");
  auto old_failed = old_row("failed");
  auto old_pending = old_row("pending");
  auto count = [&](const std::string& id) {
    return db->scalar("SELECT count(*) FROM alert_notifications WHERE alert_id = '" + id + "'");
  };
  // The cleanup actor runs at start (and every 10 minutes).
  stop_app();
  start_app();
  ASSERT_TRUE(eventually([&] { return count(old_delivered) == "0" && count(old_failed) == "0"; }))
      << "old notifications were not deleted";
  EXPECT_EQ(count(old_pending), "1");
}

} // namespace
} // namespace joule::rules::test
