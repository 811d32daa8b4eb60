// Named receivers over real HTTP and PostgreSQL: CRUD (the secret never returned), rules
// routed to them, and grouping (12 devices of one household → one signed POST of 12 alerts).
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <set>

#include "tests/rules/alerts_fixture.hpp"
#include "tests/rules/webhook_receiver.hpp"

namespace joule::rules::test {
namespace {

using joule::test::http_request;

class Receivers : public AlertsTest {
protected:
  std::string create_receiver(const std::string& body) {
    auto r = http_request(port, "POST", "/alerts/receivers", body);
    EXPECT_EQ(r.status, 201) << r.body;
    auto d = json(r.body);
    return d.IsObject() && d.HasMember("id") ? d["id"].GetString() : "";
  }
  std::string webhook_receiver_body(std::uint16_t hook_port, const std::string& extra) const {
    return "{\"name\":\"ops\",\"kind\":\"webhook\",\"url\":\"http://127.0.0.1:" +
           std::to_string(hook_port) + "/grouped\",\"secret\":\"" + receiver_secret + "\"" +
           (extra.empty() ? "" : "," + extra) + "}";
  }
  std::string routed_rule(const std::string& dev, const std::string& receiver) const {
    return "{\"scope\":\"device\",\"scope_id\":\"" + dev +
           "\",\"metric\":\"power_w_max\",\"window\":\"1m\",\"op\":\">\",\"value\":1000,"
           "\"receiver_id\":\"" + receiver + "\",\"name\":\"too much power\","
           "\"labels\":{\"team\":\"energy\"}}";
  }
  const std::string receiver_secret = "receiver-secret";
};

bool signed_with(const received_webhook& w, const std::string& secret) {
  std::string msg = w.alert_id + "." + w.timestamp + "." + w.body;
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), mac, &len);
  char hex[2 * EVP_MAX_MD_SIZE + 1];
  for (unsigned i = 0; i < len; ++i)
    std::snprintf(hex + 2 * i, 3, "%02x", mac[i]);
  return w.signature == "sha256=" + std::string(hex, 2 * len);
}

TEST_F(Receivers, CrudNeverReturnsTheSecretAndInUseReceiversStay) {
  auto created = http_request(port, "POST", "/alerts/receivers",
                              webhook_receiver_body(9, "\"group_by\":[\"rule_id\",\"household_id\"]"));
  ASSERT_EQ(created.status, 201) << created.body;
  EXPECT_EQ(created.body.find(receiver_secret), std::string::npos);
  auto c = json(created.body);
  std::string id = c["id"].GetString();
  EXPECT_TRUE(c["secret_set"].GetBool());
  ASSERT_EQ(c["group_by"].Size(), 2u);
  EXPECT_EQ(std::string(c["group_by"][0].GetString()), "household_id");  // canonical order
  auto got = http_request(port, "GET", "/alerts/receivers/" + id);
  ASSERT_EQ(got.status, 200);
  EXPECT_EQ(got.body.find(receiver_secret), std::string::npos);
  auto list = http_request(port, "GET", "/alerts/receivers");
  ASSERT_EQ(list.status, 200);
  EXPECT_NE(list.body.find(id), std::string::npos);
  EXPECT_EQ(list.body.find(receiver_secret), std::string::npos);
  auto put = http_request(port, "PUT", "/alerts/receivers/" + id,
                          webhook_receiver_body(9, "\"group_wait_sec\":7"));
  ASSERT_EQ(put.status, 200) << put.body;
  EXPECT_EQ(json(put.body)["group_wait_sec"].GetInt(), 7);

  auto [dev, hh] = new_device();
  auto rule_id = create_rule(routed_rule(dev, id));
  auto rule = json(http_request(port, "GET", "/alerts/rules/" + rule_id).body);
  EXPECT_EQ(std::string(rule["receiver_id"].GetString()), id);
  EXPECT_TRUE(rule["webhook_url"].IsNull());
  EXPECT_EQ(std::string(rule["household_id"].GetString()), hh);
  auto del = http_request(port, "DELETE", "/alerts/receivers/" + id);
  EXPECT_EQ(del.status, 409) << del.body;
  EXPECT_NE(del.body.find("receiver_in_use"), std::string::npos);
  ASSERT_EQ(http_request(port, "DELETE", "/alerts/rules/" + rule_id).status, 204);
  EXPECT_EQ(http_request(port, "DELETE", "/alerts/receivers/" + id).status, 204);
  EXPECT_EQ(http_request(port, "GET", "/alerts/receivers/" + id).status, 404);

  // Bad input is a 400 naming the field; unknown ids 404; a rule naming no receiver 404.
  auto bad = http_request(port, "POST", "/alerts/receivers",
                          "{\"name\":\"x\",\"kind\":\"pager\",\"url\":\"http://127.0.0.1/\"}");
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.body.find("invalid_kind"), std::string::npos) << bad.body;
  bad = http_request(port, "POST", "/alerts/receivers",
                     webhook_receiver_body(9, "\"group_by\":[\"metric\"]"));
  EXPECT_NE(bad.body.find("invalid_group_by"), std::string::npos) << bad.body;
  bad = http_request(port, "POST", "/alerts/receivers",
                     "{\"name\":\"x\",\"kind\":\"webhook\",\"url\":\"http://127.0.0.1/\"}");
  EXPECT_NE(bad.body.find("invalid_secret"), std::string::npos) << bad.body;
  EXPECT_EQ(http_request(port, "GET", "/alerts/receivers/nope").status, 400);
  auto missing = http_request(port, "POST", "/alerts/rules", routed_rule(dev, random_uuid()));
  EXPECT_EQ(missing.status, 404);
  EXPECT_NE(missing.body.find("receiver_not_found"), std::string::npos) << missing.body;
  auto both = routed_rule(dev, random_uuid());
  both.insert(both.size() - 1, ",\"webhook_url\":\"http://127.0.0.1:9/x\"");
  EXPECT_EQ(http_request(port, "POST", "/alerts/rules", both).status, 400);
}

TEST_F(Receivers, TwelveDevicesOfOneHouseholdAreOneSignedPostOfTwelveAlerts) {
  webhook_receiver hook;
  auto receiver = create_receiver(webhook_receiver_body(
      hook.port(), "\"group_by\":[\"household_id\"],\"group_wait_sec\":2,\"group_interval_sec\":60"));
  auto household = random_uuid();
  std::vector<std::pair<std::string, std::string>> devices;
  std::set<std::string> rules;
  for (int i = 0; i < 12; ++i) {
    devices.push_back(new_device(household));
    rules.insert(create_rule(routed_rule(devices.back().first, receiver)));
  }
  wait_feed_cycles(2);
  for (auto& [d, h] : devices)
    reading(d, h, 5000, 1);
  ASSERT_TRUE(eventually([&] { return hook.count() >= 1; }));
  wait_feed_cycles(5);  // nothing else arrives: the group went out once
  ASSERT_EQ(hook.count(), 1u);
  auto w = hook.requests()[0];
  EXPECT_EQ(w.target, "/grouped");
  EXPECT_TRUE(signed_with(w, receiver_secret)) << w.signature;
  auto body = json(w.body);
  ASSERT_TRUE(body.IsObject() && body.HasMember("group_key") && body["alerts"].IsArray()) << w.body;
  EXPECT_NE(std::string(body["group_key"].GetString()).find(household), std::string::npos);
  ASSERT_EQ(body["alerts"].Size(), 12u) << w.body;
  std::set<std::string> seen;
  for (auto& a : body["alerts"].GetArray()) {
    seen.insert(a["rule_id"].GetString());
    EXPECT_EQ(std::string(a["status"].GetString()), "firing");
    EXPECT_EQ(std::string(a["household_id"].GetString()), household);
    EXPECT_EQ(std::string(a["name"].GetString()), "too much power");
    EXPECT_EQ(std::string(a["labels"]["team"].GetString()), "energy");
  }
  EXPECT_EQ(seen, rules);
  // Every row of the group is delivered.
  ASSERT_TRUE(eventually([&] {
    return db->scalar("SELECT count(*) FROM alert_notifications WHERE receiver_id = '" +
                      receiver + "' AND delivery = 'delivered'") == "12";
  }));
}

TEST_F(Receivers, ARotatedSecretSignsWhatIsStillPending) {
  webhook_receiver hook;
  auto receiver = create_receiver(webhook_receiver_body(hook.port(), "\"group_wait_sec\":3"));
  auto [dev, hh] = new_device();
  create_rule(routed_rule(dev, receiver));
  wait_feed_cycles(2);
  reading(dev, hh, 5000, 1);
  // Stored and waiting for its group (group_wait 3 s): rotate the secret now.
  ASSERT_TRUE(eventually([&] {
    return db->scalar("SELECT count(*) FROM alert_notifications WHERE receiver_id = '" +
                      receiver + "' AND delivery = 'pending'") == "1";
  }));
  auto rotated = webhook_receiver_body(hook.port(), "\"group_wait_sec\":3");
  rotated.replace(rotated.find(receiver_secret), receiver_secret.size(), "rotated-secret");
  ASSERT_EQ(http_request(port, "PUT", "/alerts/receivers/" + receiver, rotated).status, 200);
  ASSERT_TRUE(eventually([&] { return hook.count() >= 1; }));
  EXPECT_TRUE(signed_with(hook.requests()[0], "rotated-secret"));
  EXPECT_FALSE(signed_with(hook.requests()[0], receiver_secret));
}

// Against a real Prometheus Alertmanager started by scripts/test (JOULE_TEST_ALERTMANAGER_URL).
TEST_F(Receivers, AlertmanagerShowsTheAlertWithItsLabelsAndResolvesIt) {
  const char* am = std::getenv("JOULE_TEST_ALERTMANAGER_URL");
  if (!am)
    GTEST_SKIP() << "JOULE_TEST_ALERTMANAGER_URL is not set (scripts/test starts one)";
  std::string url = am;
  auto am_port = static_cast<std::uint16_t>(std::stoi(url.substr(url.rfind(':') + 1)));
  auto receiver = create_receiver("{\"name\":\"am\",\"kind\":\"alertmanager\",\"url\":\"" + url +
                                  "\",\"group_by\":[\"rule_id\"],\"group_interval_sec\":1}");
  auto [dev, hh] = new_device();
  reading(dev, hh, 100, 1);
  auto name = "joule_silent_" + random_uuid().substr(0, 8);
  auto rule_id = create_rule("{\"scope\":\"device\",\"scope_id\":\"" + dev +
                             "\",\"metric\":\"silence_sec\",\"op\":\">\",\"value\":2,"
                             "\"cooldown_sec\":0,\"receiver_id\":\"" + receiver + "\",\"name\":\"" +
                             name + "\",\"labels\":{\"team\":\"energy\"}}");
  const std::string query = "/api/v2/alerts?filter=" + std::string("rule_id%3D%22") + rule_id + "%22";
  rapidjson::Document alerts;
  ASSERT_TRUE(eventually([&] {
    auto r = http_request(am_port, "GET", query);
    if (r.status != 200)
      return false;
    alerts = json(r.body);
    return alerts.IsArray() && alerts.Size() == 1;
  }, std::chrono::seconds(20))) << "the alert never reached Alertmanager";
  auto& a = alerts[0];
  EXPECT_EQ(std::string(a["labels"]["alertname"].GetString()), name);
  EXPECT_EQ(std::string(a["labels"]["rule_id"].GetString()), rule_id);
  EXPECT_EQ(std::string(a["labels"]["scope"].GetString()), "device");
  EXPECT_EQ(std::string(a["labels"]["scope_id"].GetString()), dev);
  EXPECT_EQ(std::string(a["labels"]["household_id"].GetString()), hh);
  EXPECT_EQ(std::string(a["labels"]["metric"].GetString()), "silence_sec");
  EXPECT_EQ(std::string(a["labels"]["team"].GetString()), "energy");
  EXPECT_TRUE(a["annotations"].HasMember("observed") && a["annotations"].HasMember("threshold"));
  EXPECT_EQ(std::string(a["status"]["state"].GetString()), "active");

  // The device reports again (and keeps reporting, so the 2 s silence does not come back):
  // resolved in Joule, so Alertmanager ends the alert.
  int polls = 0;
  ASSERT_TRUE(eventually([&] {
    if (polls++ % 10 == 0)
      reading(dev, hh, 100, 1);
    auto r = http_request(am_port, "GET", query);
    auto d = json(r.body);
    return r.status == 200 && d.IsArray() && d.Size() == 0;
  }, std::chrono::seconds(20))) << "Alertmanager still shows the alert";
  EXPECT_EQ(db->scalar("SELECT count(*) FROM alert_notifications WHERE rule_id = '" + rule_id +
                       "' AND delivery = 'delivered'"),
            "2");
}

} // namespace
} // namespace joule::rules::test
