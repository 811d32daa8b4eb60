#pragma once
// Shared set-up of the rules integration tests: one private database per test binary, an
// in-process joule::app per test (restartable on the same database), and small helpers.

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include <rapidjson/document.h>

#include "actors/app.hpp"
#include "core/metrics.hpp"
#include "rules/rule.hpp"
#include "tests/support/http_client.hpp"
#include "tests/support/pg_test_db.hpp"

namespace joule::rules::test {

inline joule::test::pg_test_db& shared_db() {
  static joule::test::pg_test_db db{"joule_test_rules"};
  return db;
}

/// Polls `pred` every 20 ms until it holds or `limit` passes; returns its last value.
inline bool eventually(const std::function<bool()>& pred,
                       std::chrono::milliseconds limit = std::chrono::seconds(10)) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred())
      return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return pred();
}

inline rapidjson::Document json(const std::string& body) {
  rapidjson::Document d;
  d.Parse(body.c_str());
  EXPECT_FALSE(d.HasParseError()) << body;
  return d;
}

class AlertsTest : public ::testing::Test {
protected:
  void SetUp() override {
    if (!std::getenv("JOULE_TEST_PG"))
      GTEST_SKIP() << "JOULE_TEST_PG is not set";
    db = &shared_db();
    start_app();
  }

  void TearDown() override {
    stop_app();
    if (db) {
      // Later tests must not inherit rules or retries aimed at receivers that are gone.
      db->exec("DELETE FROM alert_rules");
      db->exec("UPDATE alert_notifications SET delivery = 'failed' WHERE delivery = 'pending'");
    }
  }

  virtual config::settings settings() const {
    config::settings s;
    s.db_url = db->url();
    s.redis_url = "";
    s.http_listen = "127.0.0.1:0";
    s.db_pool_size = 4;
    s.alerts_feed_interval = std::chrono::milliseconds(200);
    s.alerts_webhook_timeout = std::chrono::milliseconds(1000);
    s.alerts_retry_initial = std::chrono::milliseconds(100);
    s.alerts_retry_max = std::chrono::milliseconds(400);
    s.alerts_retry_max_attempts = 100;
    s.alerts_allowed_hosts = "127.0.0.1, localhost, .allowed.example";
    // The receivers run on 127.0.0.1: a lab set-up. Tests of the SSRF guard turn it off.
    s.alerts_allow_private_targets = true;
    // Not about identity (tests/http/auth_test.cpp is): on loopback no token means admin.
    s.auth_required = false;
    return s;
  }

  void start_app() {
    app = std::make_unique<joule::app>(settings());
    app->start();
    port = app->port();
  }

  void stop_app() {
    if (app) {
      app->stop();
      app.reset();
    }
  }

  /// Registers a device (and so its household) and returns {device, household}.
  std::pair<std::string, std::string> new_device(std::string household = {}) {
    auto d = random_uuid();
    if (household.empty())
      household = random_uuid();
    db->exec("INSERT INTO devices (id, household_id) VALUES ('" + d + "', '" + household + "')");
    return {d, household};
  }

  void reading(const std::string& device, const std::string& household, double power_w,
               double energy_wh, const std::string& ts = "now()") {
    db->exec("INSERT INTO telemetry (ts, device_id, household_id, power_w, energy_wh) VALUES (" +
             ts + ", '" + device + "', '" + household + "', " + std::to_string(power_w) + ", " +
             std::to_string(energy_wh) + ")");
  }

  std::string rule_body(const std::string& scope, const std::string& scope_id,
                        const std::string& metric, const std::string& window, double value,
                        std::uint16_t hook_port, const std::string& extra = "") const {
    return "{\"scope\":\"" + scope + "\",\"scope_id\":\"" + scope_id + "\",\"metric\":\"" +
           metric + "\",\"window\":\"" + window + "\",\"op\":\">\",\"value\":" +
           std::to_string(value) + ",\"webhook_url\":\"http://127.0.0.1:" +
           std::to_string(hook_port) + "/hook\",\"webhook_secret\":\"" + secret + "\"" +
           (extra.empty() ? "" : "," + extra) + "}";
  }

  /// POSTs a rule and returns its id (fails the test on anything but 201).
  std::string create_rule(const std::string& body) {
    auto r = joule::test::http_request(port, "POST", "/alerts/rules", body);
    EXPECT_EQ(r.status, 201) << r.body;
    auto d = json(r.body);
    if (!d.IsObject() || !d.HasMember("id"))
      return {};
    return d["id"].GetString();
  }

  /// Completed bucket feed cycles so far (process-wide metric).
  std::uint64_t feed_cycles() const {
    return metrics::global()
        .get_histogram("joule_alert_feed_cycle_seconds",
                       "Duration of one bucket feed cycle (all rules' queries)")
        .count();
  }

  /// Waits until `n` more feed cycles completed: lets "nothing happened" assertions rest on
  /// evaluation having actually run rather than on a sleep.
  void wait_feed_cycles(std::uint64_t n) {
    auto target = feed_cycles() + n;
    ASSERT_TRUE(eventually([&] { return feed_cycles() >= target; })) << "feed is not running";
  }

  const std::string secret = "test-secret";
  joule::test::pg_test_db* db = nullptr;
  std::unique_ptr<joule::app> app;
  std::uint16_t port = 0;
};

} // namespace joule::rules::test
