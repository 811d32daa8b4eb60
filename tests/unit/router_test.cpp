#include <gtest/gtest.h>

#include "core/timefmt.hpp"
#include "http/router.hpp"
#include "http/routes.hpp"

using namespace joule;
using namespace joule::http;

namespace {
const std::string hid = "11111111-2222-3333-4444-555555555555";
const std::int64_t now = *parse_rfc3339("2026-11-27T12:34:56Z");
constexpr std::int64_t minute = 60 * micros_per_second;

// The analytics routes' patterns, with handlers that are never called here.
const route_table& table() {
  static route_table t = [] {
    route_table out;
    auto add = [&](const char* method, const char* pattern, const char* name) {
      route r;
      r.method = method;
      r.pattern = pattern;
      r.name = name;
      out.add(std::move(r));
    };
    add("GET", "/analytics/households/{id}/energy", "energy");
    add("GET", "/analytics/households/{id}/top-devices", "top_devices");
    add("GET", "/analytics/devices/{id}/power", "power");
    add("POST", "/telemetry", "telemetry");
    add("GET", "/alerts/rules/{id}", "alert_rule");
    add("DELETE", "/alerts/rules/{id}", "alert_rule");
    return out;
  }();
  return t;
}

std::string route_of(const std::string& method, const std::string& target) {
  auto m = table().match(method, target);
  return m.found ? m.found->name : m.path_known ? "method_not_allowed" : "not_found";
}

matched match(const std::string& method, const std::string& target) {
  return table().match(method, target).params;
}

api_error err_of(const series_request& r) {
  EXPECT_TRUE(std::holds_alternative<api_error>(r));
  return std::holds_alternative<api_error>(r) ? std::get<api_error>(r) : api_error{};
}
} // namespace

TEST(Router, MatchesTheDesignDocumentPaths) {
  EXPECT_EQ(route_of("GET", "/analytics/households/" + hid + "/energy?step=5m"), "energy");
  EXPECT_EQ(route_of("GET", "/analytics/households/" + hid + "/top-devices"), "top_devices");
  EXPECT_EQ(route_of("GET", "/analytics/devices/" + hid + "/power"), "power");
  EXPECT_EQ(route_of("POST", "/analytics/devices/" + hid + "/power"), "method_not_allowed");
  EXPECT_EQ(route_of("GET", "/analytics/nothing"), "not_found");
  EXPECT_EQ(route_of("GET", "/analytics/households/" + hid), "not_found");
  EXPECT_EQ(route_of("POST", "/telemetry"), "telemetry");
  EXPECT_EQ(route_of("DELETE", "/alerts/rules/" + hid), "alert_rule");
  EXPECT_EQ(route_of("PUT", "/alerts/rules/" + hid), "method_not_allowed");
  EXPECT_EQ(route_of("GET", "//telemetry/"), "method_not_allowed") << "empty segments ignored";
  auto m = match("GET", "/analytics/households/" + hid + "/energy?start=2026-11-27T10%3A00%3A00Z");
  EXPECT_EQ(m.query.at("start"), "2026-11-27T10:00:00Z");
  EXPECT_EQ(m.id, hid);
}

TEST(Router, EnergyDefaultsToTheLast24HoursEndingAtTheCurrentBucket) {
  auto r = parse_energy(match("GET", "/analytics/households/" + hid + "/energy"), now, {});
  auto q = std::get<db::series_query>(r);
  EXPECT_EQ(q.end, *parse_rfc3339("2026-11-27T12:35:00Z"));
  EXPECT_EQ(q.end - q.start, 24 * 60 * minute);
  EXPECT_EQ(q.step, 5 * minute);
}

TEST(Router, EveryBadInputGetsANamed400) {
  auto energy = [&](const std::string& qs) {
    return parse_energy(match("GET", "/analytics/households/" + hid + "/energy?" + qs), now,
                        {100, 10});
  };
  EXPECT_EQ(err_of(parse_energy(match("GET", "/analytics/households/nope/energy"), now, {})).code,
            "invalid_household_id");
  EXPECT_EQ(err_of(energy("start=2026-11-27")).code, "invalid_start");
  EXPECT_EQ(err_of(energy("end=tomorrow")).code, "invalid_end");
  EXPECT_EQ(err_of(energy("start=2026-11-27T12:00:00Z&end=2026-11-27T11:00:00Z")).code,
            "invalid_range");
  EXPECT_EQ(err_of(energy("start=2026-11-27T12:00:00Z&end=2026-11-27T12:00:00Z")).code,
            "invalid_range");
  EXPECT_EQ(err_of(energy("step=1m")).code, "invalid_step");
  EXPECT_EQ(err_of(energy("step=")).code, "invalid_step");
  EXPECT_EQ(err_of(energy("start=2026-11-01T00:00:00Z")).code, "range_too_large");
  EXPECT_EQ(err_of(energy("strat=2026-11-27T00:00:00Z")).code, "unknown_parameter");
  EXPECT_EQ(err_of(energy("start=%zz")).code, "bad_query");
  EXPECT_EQ(err_of(energy("step=5m&step=1h")).code, "bad_query");
  auto power = parse_power(match("GET", "/analytics/devices/" + hid + "/power?step=2m"), now, {});
  EXPECT_EQ(err_of(power).code, "invalid_step");
  auto top = parse_top(match("GET", "/analytics/households/" + hid + "/top-devices?limit=0"), now,
                       {100, 10});
  ASSERT_TRUE(std::holds_alternative<api_error>(top));
  EXPECT_EQ(std::get<api_error>(top).code, "invalid_limit");
  top = parse_top(match("GET", "/analytics/households/" + hid + "/top-devices?limit=11"), now,
                  {100, 10});
  EXPECT_EQ(std::get<api_error>(top).code, "invalid_limit");
}

TEST(Router, UuidsAreNormalisedToLowerCase) {
  EXPECT_EQ(normalize_uuid("AAAAAAAA-bbbb-CCCC-dddd-EEEEEEEEEEEE"),
            std::string("aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"));
  EXPECT_FALSE(normalize_uuid("aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeee"));
  EXPECT_FALSE(normalize_uuid("aaaaaaaaXbbbb-cccc-dddd-eeeeeeeeeeee"));
  EXPECT_FALSE(normalize_uuid("gaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"));
}

TEST(Router, TopDevicesWindowIsTheLast24HourlyBuckets) {
  auto top = parse_top(match("GET", "/analytics/households/" + hid + "/top-devices"), now, {});
  auto q = std::get<db::top_query>(top);
  EXPECT_EQ(q.limit, 5);
  EXPECT_EQ(q.end, *parse_rfc3339("2026-11-27T13:00:00Z"));
  EXPECT_EQ(q.start, *parse_rfc3339("2026-11-26T13:00:00Z"));
}
