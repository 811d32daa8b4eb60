#include <gtest/gtest.h>

#include "core/timefmt.hpp"
#include "http/router.hpp"

using namespace joule;
using namespace joule::http;

namespace {
const std::string hid = "11111111-2222-3333-4444-555555555555";
const std::int64_t now = *parse_rfc3339("2026-11-27T12:34:56Z");
constexpr std::int64_t minute = 60 * micros_per_second;

api_error err_of(const series_request& r) {
  EXPECT_TRUE(std::holds_alternative<api_error>(r));
  return std::holds_alternative<api_error>(r) ? std::get<api_error>(r) : api_error{};
}
} // namespace

TEST(Router, MatchesTheDesignDocumentPaths) {
  EXPECT_EQ(match("GET", "/analytics/households/" + hid + "/energy?step=5m").kind, route::energy);
  EXPECT_EQ(match("GET", "/analytics/households/" + hid + "/top-devices").kind, route::top_devices);
  EXPECT_EQ(match("GET", "/analytics/devices/" + hid + "/power").kind, route::power);
  EXPECT_EQ(match("POST", "/analytics/devices/" + hid + "/power").kind, route::method_not_allowed);
  EXPECT_EQ(match("GET", "/analytics/nothing").kind, route::not_found);
  EXPECT_EQ(match("POST", "/telemetry").kind, route::telemetry);
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
