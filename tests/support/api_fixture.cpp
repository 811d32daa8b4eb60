#include "tests/support/api_fixture.hpp"

#include <chrono>
#include <thread>

#include <gtest/gtest.h>

#include <cstdio>

namespace joule::test {

config::settings test_settings(const std::string& db_url, const std::string& redis_url) {
  config::settings s;
  s.db_url = db_url;
  s.redis_url = redis_url;
  s.http_listen = "127.0.0.1:0";
  s.db_pool_size = 3;
  s.scheduler_threads = 2;
  for (auto& [name, policy] : s.refresh_policies)
    policy.schedule_interval = std::chrono::hours(1);
  s.alerts_enabled = false;
  // These tests are about the API, not identity (tests/http/auth_test.cpp is): on loopback a
  // request without a token acts as admin.
  s.auth_required = false;
  return s;
}

rapidjson::Document parse_json(const std::string& body) {
  rapidjson::Document d;
  d.Parse(body.c_str());
  EXPECT_FALSE(d.HasParseError()) << "not JSON: " << body;
  return d;
}

std::string household_id(int h) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "00000000-0000-4000-8000-%012d", h);
  return buf;
}

std::string device_id(int d) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "00000000-0000-4000-9000-%012d", d);
  return buf;
}

double metric(std::uint16_t port, const std::string& series, const std::string& token) {
  auto body = token.empty() ? http_get(port, "/metrics").body
                            : http_request_with(port, "GET", "/metrics", "", bearer(token)).body;
  auto at = body.find("\n" + series + " ");
  if (at == std::string::npos)
    return 0;
  return std::stod(body.substr(at + series.size() + 2));
}

bool live_published(std::uint16_t port, const std::string& token) {
  auto body = token.empty()
                  ? http_get(port, "/admin/status").body
                  : http_request_with(port, "GET", "/admin/status", "", bearer(token)).body;
  rapidjson::Document d;
  d.Parse(body.c_str());
  if (d.HasParseError() || !d.IsObject() || !d.HasMember("live_tail") || !d["live_tail"].IsObject())
    return false;
  const auto& t = d["live_tail"];
  return t.HasMember("snapshot_age_ms") && t["snapshot_age_ms"].IsNumber() &&
         t.HasMember("buckets") && t["buckets"].IsNumber() && t["buckets"].GetDouble() > 0;
}

bool wait_live_and_rollups(const pg_test_db& db, std::uint16_t port, const std::string& token) {
  for (int i = 0; i < 600; ++i) {
    if (live_published(port, token) &&
        db.scalar("SELECT count(*) FROM rollup_state WHERE watermark IS NOT NULL") == "3")
      return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

void seed_fleet(const pg_test_db& db, int households, int per_household, int hours, int every_s) {
  db.exec("INSERT INTO devices (id, household_id) SELECT "
          "('00000000-0000-4000-9000-' || lpad(i::text, 12, '0'))::uuid, "
          "('00000000-0000-4000-8000-' || lpad(((i - 1) / " + std::to_string(per_household) +
          " + 1)::text, 12, '0'))::uuid FROM generate_series(1, " +
          std::to_string(households * per_household) + ") i ON CONFLICT DO NOTHING");
  db.exec("SELECT setseed(0.42); INSERT INTO telemetry SELECT t, d.id, d.household_id, "
          "CASE WHEN random() < 0.03 THEN NULL ELSE round((random() * 2000)::numeric, 2) END, "
          "round((random() * 5)::numeric, 3) FROM devices d, generate_series(now() - interval '" +
          std::to_string(hours) + " hours', now(), interval '" + std::to_string(every_s) +
          " seconds') t");
}

} // namespace joule::test
