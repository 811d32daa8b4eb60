#include <gtest/gtest.h>

#include <rapidjson/document.h>

#include "bench/dashboard_mix.hpp"
#include "bench/response_fields.hpp"
#include "common/cli_args.hpp"
#include "common/time_format.hpp"
#include "common/url.hpp"
#include "sim/fleet.hpp"
#include "sim/telemetry_json.hpp"

using namespace joule::bench;

namespace {

TEST(TimeFormat, Rfc3339RoundTrip) {
  EXPECT_EQ(format_rfc3339(1'795'780'800), "2026-11-27T12:00:00Z");
  EXPECT_EQ(format_rfc3339(0), "1970-01-01T00:00:00Z");
  double t = 0;
  ASSERT_TRUE(parse_rfc3339("2026-11-27T12:00:00Z", t));
  EXPECT_EQ(t, 1'795'780'800);
  ASSERT_TRUE(parse_rfc3339("2026-11-27T13:30:00.250+01:30", t));
  EXPECT_DOUBLE_EQ(t, 1'795'780'800.25);
  EXPECT_FALSE(parse_rfc3339("2026-11-27 12:00", t));
  EXPECT_FALSE(parse_rfc3339("2026-11-27T12:00:00", t)); // no zone
}

TEST(TimeFormat, FloorAndCeil) {
  EXPECT_EQ(floor_to(125, 60), 120);
  EXPECT_EQ(ceil_to(125, 60), 180);
  EXPECT_EQ(ceil_to(120, 60), 120);
  EXPECT_EQ(floor_to(-5, 60), -60);
}

TEST(CliArgs, Durations) {
  EXPECT_EQ(parse_duration("10s").count(), 10'000);
  EXPECT_EQ(parse_duration("250ms").count(), 250);
  EXPECT_EQ(parse_duration("5m").count(), 300'000);
  EXPECT_EQ(parse_duration("2h").count(), 7'200'000);
  EXPECT_EQ(parse_duration("3").count(), 3'000);
  EXPECT_THROW(parse_duration("10x"), std::invalid_argument);
  EXPECT_THROW(parse_duration(""), std::invalid_argument);
}

TEST(CliArgs, SubcommandAndOptions) {
  const char* argv[] = {"prog", "read", "--rates", "1,2.5", "--json=out.json", "--flag"};
  cli_args a(6, const_cast<char**>(argv));
  EXPECT_EQ(a.subcommand(), "read");
  EXPECT_EQ(a.get_doubles("rates", {}), (std::vector<double>{1, 2.5}));
  EXPECT_EQ(a.get("json", ""), "out.json");
  EXPECT_TRUE(a.get_bool("flag", false));
  EXPECT_THROW(a.require_known({"rates", "json"}), std::invalid_argument);
}

TEST(Url, OnlyLoopbackTargets) {
  auto u = http_url::parse("http://127.0.0.1:8080");
  EXPECT_EQ(u.port, 8080);
  EXPECT_EQ(http_url::parse("http://localhost:81/").host, "127.0.0.1");
  EXPECT_THROW(http_url::parse("http://10.0.0.1:80"), std::invalid_argument);
  EXPECT_THROW(http_url::parse("https://127.0.0.1:80"), std::invalid_argument);
}

TEST(DashboardMix, WindowsAreAlignedToTheStep) {
  const unix_seconds now = 1'795'780'800 + 123; // 12:02:03
  EXPECT_EQ(dashboard_target(dashboard_endpoint::energy_5m_24h, "h", now),
            "/analytics/households/h/energy?start=2026-11-26T12:05:00Z&end=2026-11-27T12:05:00Z&step=5m");
  EXPECT_EQ(dashboard_target(dashboard_endpoint::energy_1h_7d, "h", now),
            "/analytics/households/h/energy?start=2026-11-20T13:00:00Z&end=2026-11-27T13:00:00Z&step=1h");
  EXPECT_EQ(dashboard_target(dashboard_endpoint::power_1m_1h, "d", now),
            "/analytics/devices/d/power?start=2026-11-27T11:03:00Z&end=2026-11-27T12:03:00Z&step=1m");
  EXPECT_EQ(dashboard_target(dashboard_endpoint::top_devices, "h", now),
            "/analytics/households/h/top-devices?limit=5");
  // Requests within the same step share the same target (and so the same cache key).
  EXPECT_EQ(dashboard_target(dashboard_endpoint::power_1m_1h, "d", now + 30),
            dashboard_target(dashboard_endpoint::power_1m_1h, "d", now));
}

TEST(DashboardMix, DeterministicAndCoversEveryEndpoint) {
  fleet_ids ids;
  ids.device_ids = {"d1", "d2"};
  ids.device_households = {"h1", "h1"};
  ids.household_ids = {"h1"};
  auto a = make_dashboard_mix(ids, 400, 3, 1'795'780'800);
  auto b = make_dashboard_mix(ids, 400, 3, 1'795'780'800);
  int per_endpoint[dashboard_endpoint_count] = {};
  for (size_t i = 0; i < a.size(); ++i) {
    ASSERT_EQ(a[i].target, b[i].target);
    ++per_endpoint[a[i].endpoint];
  }
  for (int n : per_endpoint)
    EXPECT_GT(n, 60);
}

TEST(ResponseFields, ContractShapes) {
  const std::string energy = R"({"household_id":"h","step":"5m","start":"2026-11-26T12:00:00Z",
    "end":"2026-11-27T12:00:00Z","fresh_as_of":"2026-11-27T11:59:00Z","series":[{"t":"2026-11-27T11:55:00Z","v":1.5}]})";
  EXPECT_EQ(check_response_shape(dashboard_endpoint::energy_5m_24h, energy), "");
  EXPECT_NE(check_response_shape(dashboard_endpoint::power_1m_1h, energy), "");
  const std::string power = R"({"device_id":"d","step":"1m","start":"2026-11-27T11:00:00Z",
    "end":"2026-11-27T12:00:00Z","fresh_as_of":"2026-11-27T11:59:00Z","series":[{"t":"2026-11-27T11:58:00Z","avg":2,"max":1000003.5}]})";
  EXPECT_EQ(check_response_shape(dashboard_endpoint::power_1m_1h, power), "");
  double max = 0, fresh = 0;
  ASSERT_TRUE(read_power_bucket_max(power, 1'795'780'800 - 120, max));
  EXPECT_DOUBLE_EQ(max, 1000003.5);
  EXPECT_FALSE(read_power_bucket_max(power, 1'795'780'800, max));
  ASSERT_TRUE(read_fresh_as_of(power, fresh));
  EXPECT_EQ(fresh, 1'795'780'800 - 60);
  const std::string top = R"({"household_id":"h","window":{"start":"2026-11-26T12:00:00Z","end":"2026-11-27T12:00:00Z"},
    "fresh_as_of":"2026-11-27T11:59:00Z","devices":[{"device_id":"d","energy_wh":3.5}]})";
  EXPECT_EQ(check_response_shape(dashboard_endpoint::top_devices, top), "");
  EXPECT_NE(check_response_shape(dashboard_endpoint::top_devices, R"({"error":{"code":"x","message":"y"}})"), "");
}

TEST(TelemetryJson, BodyParsesAndCarriesEveryReading) {
  const auto f = make_fleet({2, 3, 3, 1});
  std::vector<reading> rs;
  for (const auto& d : f.devices)
    rs.push_back({1'795'780'800, &d.id, &d.household_id, 123.25, 0.3424});
  std::string body;
  append_telemetry_body(body, rs.data(), rs.size());
  rapidjson::Document doc;
  doc.Parse(body.c_str());
  ASSERT_FALSE(doc.HasParseError()) << body;
  const auto& arr = doc["readings"];
  ASSERT_EQ(arr.Size(), rs.size());
  EXPECT_STREQ(arr[0]["ts"].GetString(), "2026-11-27T12:00:00Z");
  EXPECT_EQ(std::string(arr[0]["device_id"].GetString()), f.devices[0].id.to_string());
  EXPECT_DOUBLE_EQ(arr[0]["power_w"].GetDouble(), 123.25);
  EXPECT_EQ(parse_accepted(R"({"accepted": 6})"), 6);
  EXPECT_EQ(parse_accepted(R"({"error":{}})"), -1);
}

} // namespace
