// The outbox and silence housekeeping queries against PostgreSQL, with no server running (so
// no notifier claims the rows under test): grouped POSTs are capped, busy receivers are left
// out of a claim, silence releases read nothing until a silence ends, and Alertmanager
// re-posts go page by page and leave out alerts silenced after they fired.
#include "db/session.hpp"
#include "rules/rule_sql.hpp"
#include "tests/rules/alerts_fixture.hpp"

namespace joule::rules::test {
namespace {

class Housekeeping : public AlertsTest {
protected:
  void SetUp() override {
    AlertsTest::SetUp();
    if (IsSkipped())
      return;
    stop_app();  // nobody else claims or releases
    db->exec("UPDATE alert_notifications SET delivery = 'failed' WHERE delivery = 'pending'");
    db->exec("UPDATE alert_rule_state SET silenced_pending = false");
    db->exec("DELETE FROM alert_silences");
    session = std::make_unique<db::session>(db->url());
  }

  std::string receiver(const std::string& kind, const std::string& url) {
    return db->scalar("INSERT INTO alert_receivers (name, kind, url, secret) VALUES ('t', '" +
                      kind + "', '" + url + "', '" + (kind == "webhook" ? "s" : "") +
                      "') RETURNING id");
  }

  // A firing rule (device scope) with its incident's notification; returns {rule, incident}.
  std::pair<std::string, std::string> firing_rule(const std::string& receiver_id,
                                                  const std::string& labels, bool pending) {
    auto [dev, hh] = new_device();
    auto rule = db->scalar(
        "INSERT INTO alert_rules (scope, scope_id, metric, window_minutes, op, threshold, "
        "webhook_url, webhook_secret, receiver_id, labels) VALUES ('device', '" + dev +
        "', 'power_w_max', 1, '>', 1, " +
        (receiver_id.empty() ? "'http://127.0.0.1:9/h', 'k', NULL"
                             : "'', '', '" + receiver_id + "'") +
        ", '" + labels + "') RETURNING id");
    auto incident = random_uuid();
    db->exec("INSERT INTO alert_rule_state (rule_id, phase, incident_id, fired_at, "
             "silenced_pending) VALUES ('" + rule + "', 'firing', '" + incident + "', now(), " +
             (pending ? "true" : "false") + ")");
    auto payload = "{\"alert_id\":\"" + incident + "\",\"incident_id\":\"" + incident +
                   "\",\"rule_id\":\"" + rule + "\",\"status\":\"firing\",\"scope\":\"device\","
                   "\"scope_id\":\"" + dev + "\",\"household_id\":\"" + hh +
                   "\",\"metric\":\"power_w_max\",\"labels\":" + labels + "}";
    db->exec("INSERT INTO alert_notifications (alert_id, incident_id, rule_id, status, bucket, "
             "observed, payload, webhook_url, webhook_secret, destination, delivery) VALUES ('" +
             incident + "', '" + incident + "', '" + rule + "', 'firing', now(), 5, '" +
             payload + "', '', '', '', 'delivered')");
    households[rule] = hh;
    return {rule, incident};
  }

  std::unique_ptr<db::session> session;
  std::map<std::string, std::string> households;
};

TEST_F(Housekeeping, AGroupedPostCarriesAtMostTheCapTheRestGoesNext) {
  auto r = receiver("webhook", "http://127.0.0.1:9/grouped");
  for (int i = 0; i < 5; ++i) {
    auto id = random_uuid();
    db->exec("INSERT INTO alert_notifications (alert_id, incident_id, rule_id, status, bucket, "
             "observed, payload, webhook_url, webhook_secret, destination, receiver_id, "
             "group_key, next_attempt_at, created_at) VALUES ('" + id + "', '" + id + "', '" +
             random_uuid() + "', 'firing', now(), 1, '{\"n\":" + std::to_string(i) +
             "}', '', '', '', '" + r + "', 'g', now() - interval '1 second', now() - interval '" +
             std::to_string(10 - i) + " seconds')");
  }
  std::vector<std::size_t> sizes;
  for (int k = 0; k < 4; ++k) {
    auto items = claim_due(*session, {}, 10, 15000, 2);
    sizes.push_back(items.empty() ? 0 : items.at(0).alert_ids.size());
    if (k == 0) {
      ASSERT_EQ(items.size(), 1u);  // one POST...
      // ... of the two oldest alerts
      EXPECT_NE(items[0].payload.find("{\"n\":0}"), std::string::npos) << items[0].payload;
      EXPECT_NE(items[0].payload.find("{\"n\":1}"), std::string::npos);
      EXPECT_EQ(items[0].payload.find("{\"n\":2}"), std::string::npos);
    }
  }
  EXPECT_EQ(sizes, (std::vector<std::size_t>{2, 2, 1, 0}));
}

TEST_F(Housekeeping, ReceiversAtTheirInFlightLimitAreLeftOutOfTheClaim) {
  auto r = receiver("webhook", "http://127.0.0.1:9/grouped");
  auto id = random_uuid();
  db->exec("INSERT INTO alert_notifications (alert_id, incident_id, rule_id, status, bucket, "
           "observed, payload, webhook_url, webhook_secret, destination, receiver_id, "
           "group_key) VALUES ('" + id + "', '" + id + "', '" + random_uuid() +
           "', 'firing', now(), 1, '{}', '', '', '', '" + r + "', 'g')");
  EXPECT_TRUE(claim_due(*session, {"http://127.0.0.1:9"}, 10, 15000).empty());
  EXPECT_EQ(db->scalar("SELECT lease_until IS NULL FROM alert_notifications WHERE alert_id = '" +
                       id + "'"),
            "t");  // not leased either: another instance may take it
  auto items = claim_due(*session, {"http://other.example:80"}, 10, 15000);
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0].alert_ids, std::vector<std::string>{id});
}

TEST_F(Housekeeping, SilenceReleasesReadNothingUntilASilenceEnds) {
  auto [rule, incident] = firing_rule("", "{\"team\":\"x\"}", true);
  db->exec("INSERT INTO alert_silences (matchers, starts_at, ends_at) VALUES "
           "('{\"team\":\"x\"}', now() - interval '1 hour', now() + interval '1 hour')");
  auto first = release_silenced(*session, std::nullopt, true);
  EXPECT_TRUE(first.ran);
  EXPECT_EQ(first.released, 0);  // still silenced
  // Nothing ended since: the next checks read nothing.
  auto quiet = release_silenced(*session, first.checked_at, false);
  EXPECT_FALSE(quiet.ran);
  EXPECT_EQ(quiet.released, 0);
  // The silence ends: the next check releases the alert once, under the same incident.
  db->exec("UPDATE alert_silences SET ends_at = now()");
  auto ended = release_silenced(*session, quiet.checked_at, false);
  EXPECT_TRUE(ended.ran);
  EXPECT_EQ(ended.released, 1);
  EXPECT_EQ(db->scalar("SELECT count(*) FROM alert_notifications WHERE incident_id = '" +
                       incident + "' AND delivery = 'pending'"),
            "1");
  EXPECT_EQ(db->scalar("SELECT silenced_pending FROM alert_rule_state WHERE rule_id = '" + rule +
                       "'"),
            "f");
  // Nothing silenced is left: even a full pass reads nothing.
  EXPECT_FALSE(release_silenced(*session, ended.checked_at, true).ran);
}

TEST_F(Housekeeping, AlertmanagerRePostsArePagedAndLeaveOutAlertsSilencedAfterTheyFired) {
  auto am = receiver("alertmanager", "http://127.0.0.1:9");
  std::vector<std::string> rules;
  for (int i = 0; i < 3; ++i)
    rules.push_back(firing_rule(am, "{}", false).first);
  std::sort(rules.begin(), rules.end());
  auto page1 = firing_for_alertmanager(*session, "", 2);
  ASSERT_EQ(page1.size(), 2u);
  EXPECT_EQ(page1[0].rule_id, rules[0]);
  EXPECT_EQ(page1[1].rule_id, rules[1]);
  EXPECT_EQ(page1[0].url, "http://127.0.0.1:9");
  auto page2 = firing_for_alertmanager(*session, page1.back().rule_id, 2);
  ASSERT_EQ(page2.size(), 1u);
  EXPECT_EQ(page2[0].rule_id, rules[2]);
  // A silence created after they fired (no notification was produced since): left out.
  db->exec("INSERT INTO alert_silences (matchers, starts_at, ends_at) VALUES "
           "('{\"household_id\":\"" + households[rules[1]] + "\"}', now() - interval '1 second', "
           "now() + interval '1 hour')");
  auto after = firing_for_alertmanager(*session, "", 10);
  ASSERT_EQ(after.size(), 2u);
  EXPECT_EQ(after[0].rule_id, rules[0]);
  EXPECT_EQ(after[1].rule_id, rules[2]);
}

} // namespace
} // namespace joule::rules::test
