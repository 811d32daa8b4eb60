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

namespace {
// Parses an energy or power request with the given query string; fails the test on an error.
db::series_query series_of(const std::string& path, const std::string& qs, const limits& lim = {}) {
  auto m = match("GET", path + "?" + qs);
  bool power = path.find("/power") != std::string::npos;
  auto r = power ? parse_power(m, now, lim) : parse_energy(m, now, lim);
  if (auto* e = std::get_if<api_error>(&r)) {
    ADD_FAILURE() << qs << ": " << e->code << " " << e->message;
    return {};
  }
  return std::get<db::series_query>(r);
}
std::int64_t at(const std::string& text) { return *parse_rfc3339(text); }
const std::string energy_path = "/analytics/households/" + hid + "/energy";
const std::string power_path = "/analytics/devices/" + hid + "/power";
} // namespace

TEST(RouterBounds, StartIsRoundedDownAndEndUpToTheStep) {
  // The case from the issue: 08:03–10:31 hourly is the three whole hours 08:00–11:00.
  auto q = series_of(energy_path, "step=1h&start=2026-11-27T08:03:00Z&end=2026-11-27T10:31:00Z");
  EXPECT_EQ(q.start, at("2026-11-27T08:00:00Z"));
  EXPECT_EQ(q.end, at("2026-11-27T11:00:00Z"));
  q = series_of(energy_path, "step=5m&start=2026-11-27T08:03:00Z&end=2026-11-27T10:31:00Z");
  EXPECT_EQ(q.start, at("2026-11-27T08:00:00Z"));
  EXPECT_EQ(q.end, at("2026-11-27T10:35:00Z"));
  // Sub-second parts count: one microsecond past a boundary opens the next bucket.
  q = series_of(power_path,
                "step=1m&start=2026-11-27T08:03:59.999999Z&end=2026-11-27T08:10:00.000001Z");
  EXPECT_EQ(q.start, at("2026-11-27T08:03:00Z"));
  EXPECT_EQ(q.end, at("2026-11-27T08:11:00Z"));
  q = series_of(power_path, "step=5m&start=2026-11-27T08:04:59Z&end=2026-11-27T08:05:01Z");
  EXPECT_EQ(q.start, at("2026-11-27T08:00:00Z"));
  EXPECT_EQ(q.end, at("2026-11-27T08:10:00Z"));
  q = series_of(power_path, "step=1h&start=2026-11-27T08:59:59Z&end=2026-11-27T09:00:01Z");
  EXPECT_EQ(q.start, at("2026-11-27T08:00:00Z"));
  EXPECT_EQ(q.end, at("2026-11-27T10:00:00Z"));
}

TEST(RouterBounds, AlignedBoundsAreKeptAsGiven) {
  for (std::string step : {"1m", "5m", "1h"}) {
    auto q = series_of(power_path,
                       "step=" + step + "&start=2026-11-27T08:00:00Z&end=2026-11-27T10:00:00Z");
    EXPECT_EQ(q.start, at("2026-11-27T08:00:00Z")) << step;
    EXPECT_EQ(q.end, at("2026-11-27T10:00:00Z")) << step;
  }
}

TEST(RouterBounds, AlignmentIsOnUtcWhateverTheOffsetAndBeforeTheEpoch) {
  // 09:03+01:00 is 08:03Z; a +05:30 offset is not on the hour grid at all.
  auto q = series_of(energy_path,
                     "step=1h&start=2026-11-27T09:03:00%2B01:00&end=2026-11-27T14:01:00%2B05:30");
  EXPECT_EQ(q.start, at("2026-11-27T08:00:00Z"));
  EXPECT_EQ(q.end, at("2026-11-27T09:00:00Z"));  // 08:31Z rounded up
  // Negative epoch times round down too, not towards zero.
  q = series_of(power_path, "step=1m&start=1969-12-31T23:58:30Z&end=1969-12-31T23:59:30Z");
  EXPECT_EQ(q.start, at("1969-12-31T23:58:00Z"));
  EXPECT_EQ(q.end, at("1970-01-01T00:00:00Z"));
}

TEST(RouterBounds, ARangeInsideOneBucketIsThatBucketAndAnEmptyRangeIsRefused) {
  auto q = series_of(energy_path, "step=1h&start=2026-11-27T08:03:00Z&end=2026-11-27T08:04:00Z");
  EXPECT_EQ(q.start, at("2026-11-27T08:00:00Z"));
  EXPECT_EQ(q.end, at("2026-11-27T09:00:00Z"));
  // start == end is empty even though both round to a bucket; start > end within one bucket
  // too.
  auto m = match("GET",
                 energy_path + "?step=1h&start=2026-11-27T08:03:00Z&end=2026-11-27T08:03:00Z");
  EXPECT_EQ(err_of(parse_energy(m, now, {})).code, "invalid_range");
  m = match("GET", energy_path + "?step=1h&start=2026-11-27T08:04:00Z&end=2026-11-27T08:03:00Z");
  EXPECT_EQ(err_of(parse_energy(m, now, {})).code, "invalid_range");
}

TEST(RouterBounds, DefaultsAreAlignedAndEndWithTheCurrentBucket) {
  // Only start: it is aligned, and the answer runs to the end of the current bucket.
  auto q = series_of(energy_path, "step=1h&start=2026-11-27T08:03:00Z");
  EXPECT_EQ(q.start, at("2026-11-27T08:00:00Z"));
  EXPECT_EQ(q.end, at("2026-11-27T13:00:00Z"));
  // Only end: aligned up, and the default span before it.
  q = series_of(energy_path, "step=1h&end=2026-11-27T10:31:00Z");
  EXPECT_EQ(q.end, at("2026-11-27T11:00:00Z"));
  EXPECT_EQ(q.start, at("2026-11-26T11:00:00Z"));
  q = series_of(power_path, "step=5m&end=2026-11-27T10:31:00Z");
  EXPECT_EQ(q.end, at("2026-11-27T10:35:00Z"));
  EXPECT_EQ(q.start, at("2026-11-27T09:35:00Z"));
  // Now exactly on a boundary: the bucket that has just started is the current one.
  auto on_boundary = at("2026-11-27T12:00:00Z");
  auto r = parse_power(match("GET", power_path + "?step=1h"), on_boundary, {});
  EXPECT_EQ(std::get<db::series_query>(r).end, at("2026-11-27T13:00:00Z"));
  EXPECT_EQ(std::get<db::series_query>(r).start, at("2026-11-27T12:00:00Z"));
}

TEST(RouterBounds, RangeTooLargeCountsTheAlignedBuckets) {
  limits three{3, 10};
  // 08:03–10:31 hourly is 08:00–11:00: exactly three buckets, allowed.
  auto q = series_of(energy_path, "step=1h&start=2026-11-27T08:03:00Z&end=2026-11-27T10:31:00Z",
                     three);
  EXPECT_EQ((q.end - q.start) / (60 * minute), 3);
  // 08:03–11:01 is 08:00–12:00: four buckets, although less than three hours were asked for
  // (2 h 58 min) and counting from the rounded-up start would have said three.
  auto m = match("GET",
                 energy_path + "?step=1h&start=2026-11-27T08:03:00Z&end=2026-11-27T11:01:00Z");
  auto e = err_of(parse_energy(m, now, three));
  EXPECT_EQ(e.code, "range_too_large");
  EXPECT_NE(e.message.find("2026-11-27T08:00:00Z to 2026-11-27T12:00:00Z holds 4"),
            std::string::npos)
      << e.message;
  m = match("GET", power_path + "?step=1m&start=2026-11-27T08:00:30Z&end=2026-11-27T08:02:30Z");
  EXPECT_EQ(err_of(parse_power(m, now, {2, 10})).code, "range_too_large");
  m = match("GET", power_path + "?step=1m&start=2026-11-27T08:00:00Z&end=2026-11-27T08:02:00Z");
  EXPECT_TRUE(std::holds_alternative<db::series_query>(parse_power(m, now, {2, 10})));
}

TEST(RouterBounds, TopDevicesWindowIsWholeHoursWhereverNowIs) {
  for (auto* text : {"2026-11-27T12:00:00Z", "2026-11-27T12:00:00.000001Z",
                     "2026-11-27T12:59:59.999999Z"}) {
    auto top = parse_top(match("GET", "/analytics/households/" + hid + "/top-devices"),
                         at(text), {});
    auto q = std::get<db::top_query>(top);
    EXPECT_EQ(q.end, at("2026-11-27T13:00:00Z")) << text;
    EXPECT_EQ(q.start, at("2026-11-26T13:00:00Z")) << text;
  }
}
