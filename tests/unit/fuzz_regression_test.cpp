// What the fuzz targets (tests/fuzz) found, kept as plain unit tests, and the check that keeps
// the router target's copy of the route patterns equal to the server's.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <memory>
#include <set>
#include <string>
#include <tuple>
#include <variant>

#include "config/settings.hpp"
#include "core/timefmt.hpp"
#include "http/admin_routes.hpp"
#include "http/analytics_routes.hpp"
#include "http/ingest_parse.hpp"
#include "http/ingest_routes.hpp"
#include "http/json_numbers.hpp"
#include "http/system_routes.hpp"
#include "http/ui_routes.hpp"
#include "rules/alert_routes.hpp"
#include "rules/rule.hpp"
#include "tests/fuzz/route_patterns.hpp"

using namespace joule;

namespace {

const std::string device = "7c9e6679-7425-40de-944b-e07fc1f90ae7";
const std::int64_t now = *parse_rfc3339("2026-11-27T12:34:56Z");

// One reading whose power_w and energy_wh are the given JSON number texts.
std::string batch(const std::string& power, const std::string& energy) {
  return R"({"readings":[{"ts":"2026-11-27T12:00:00Z","device_id":")" + device +
         R"(","power_w":)" + power + R"(,"energy_wh":)" + energy + "}]}";
}

double number(const std::string& json) {
  rapidjson::Document doc;
  auto r = http::parse_exact(json, doc);
  EXPECT_FALSE(r.IsError()) << json;
  return r.IsError() || !doc.IsNumber() ? std::nan("") : doc.GetDouble();
}

} // namespace

// RapidJSON 1.1.0's full-precision mode read "0e308" as -6.5e119 (UBSan: clz of 0 in its DiyFp
// normalisation); a zero reading became a huge negative power. Found by fuzz_ingest.
TEST(JsonNumbers, ZeroWithAnyExponentIsZero) {
  for (const char* zero : {"0e308", "0e38", "0e-23", "0.0e-30", "0.000e300", "0E+99"}) {
    EXPECT_EQ(number(zero), 0.0) << zero;
    EXPECT_FALSE(std::signbit(number(zero))) << zero;
  }
  EXPECT_EQ(number("-0e300"), 0.0);
  EXPECT_TRUE(std::signbit(number("-0e300")));
}

// Just past the double range RapidJSON returned -5.6e-308; it is infinite, which every caller
// rejects as not finite.
TEST(JsonNumbers, PastTheDoubleRangeIsInfinite) {
  EXPECT_EQ(number("1.7976931348623157e309"), std::numeric_limits<double>::infinity());
  EXPECT_EQ(number("-1.8e308"), -std::numeric_limits<double>::infinity());
  EXPECT_EQ(number("1.7976931348623157e308"), std::numeric_limits<double>::max());
  EXPECT_EQ(number("1e-400"), 0.0);
  EXPECT_EQ(number("4.9e-324"), std::numeric_limits<double>::denorm_min());
}

// Every number is the nearest double (RapidJSON's default mode missed some by an ulp), and
// integers stay integers for IsInt64 checks.
TEST(JsonNumbers, NearestDoubleAndIntegerTypes) {
  // The nearest doubles, as hexadecimal literals; RapidJSON's default mode gave ...439p-4
  // and ...5fp+3.
  EXPECT_EQ(number("0.1040000000000000055511151231257827"), 0x1.a9fbe76c8b43ap-4);
  EXPECT_EQ(number("10.000000000312579"), 0x1.400000002af5ep+3);
  EXPECT_EQ(number("0.1"), 0.1);
  rapidjson::Document doc;
  ASSERT_FALSE(http::parse_exact(R"([12,-7,-0,9223372036854775807,18446744073709551615,
                                     18446744073709551616,1.5])",
                                 doc)
                   .IsError());
  EXPECT_TRUE(doc[0].IsInt() && doc[0].GetInt() == 12);
  EXPECT_TRUE(doc[1].IsInt() && doc[1].GetInt() == -7);
  EXPECT_TRUE(doc[2].IsInt64() && doc[2].GetInt64() == 0);
  EXPECT_TRUE(doc[3].IsInt64() && doc[3].GetInt64() == std::numeric_limits<std::int64_t>::max());
  EXPECT_TRUE(doc[4].IsUint64() && !doc[4].IsInt64());
  EXPECT_TRUE(doc[5].IsDouble() && doc[5].GetDouble() == 18446744073709551616.0);
  EXPECT_TRUE(doc[6].IsDouble() && doc[6].GetDouble() == 1.5);
  // Strictness is RapidJSON's: not numbers, and a failed parse leaves the document null.
  for (const char* bad : {"NaN", "-Infinity", "01", "1.", ".5", "1e", "+1", "[1,]"}) {
    EXPECT_TRUE(http::parse_exact(bad, doc).IsError()) << bad;
    EXPECT_TRUE(doc.IsNull()) << bad;
  }
}

// "999999999999d" multiplied past 64-bit milliseconds (UBSan: signed overflow in
// parse_duration); found with fuzz_config's sanitizer build. It is not a duration, like any
// other unreadable value, and a setting given it names itself.
TEST(FuzzRegression, DurationPastTheMillisecondRangeIsRefused) {
  EXPECT_FALSE(config::parse_duration("999999999999d"));
  EXPECT_FALSE(config::parse_duration("106751991168d"));
  EXPECT_EQ(config::parse_duration("106751991167d"),
            config::millis(std::int64_t(106751991167) * 86'400'000));
  EXPECT_EQ(config::parse_duration("999999999999h"), config::millis(999999999999LL * 3'600'000));
  auto r = config::load({"--cache.ttl=999999999999d"}, [](const char*) { return nullptr; }, "");
  EXPECT_NE(r.error.find("cache.ttl"), std::string::npos) << r.error;
}

http::ingest_limits limits_at(std::int64_t now) {
  http::ingest_limits l;
  l.now = now;
  return l;
}

TEST(FuzzRegression, IngestZeroWithLargeExponentIsAZeroReading) {
  auto r = http::parse_readings(batch("0e308", "-0e300"), limits_at(now));
  ASSERT_TRUE(r.errors.empty()) << r.errors.front().field << " " << r.errors.front().reason;
  ASSERT_EQ(r.readings.size(), 1u);
  EXPECT_EQ(r.readings[0].power_w, 0.0);
  EXPECT_EQ(r.readings[0].energy_wh, 0.0);
}

TEST(FuzzRegression, IngestNumberPastTheDoubleRangeIsRejected) {
  auto r = http::parse_readings(batch("1.7976931348623157e309", "1"), limits_at(now));
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_TRUE(r.readings.empty());
  EXPECT_EQ(r.errors[0].index, 0);
  EXPECT_EQ(r.errors[0].field, "power_w");
  EXPECT_EQ(r.errors[0].reason, "must be finite");
}

// A rule fetched (GET) and sent back (PUT) keeps its value: the default RapidJSON conversion
// read "10.000000000312579" one ulp above the nearest double, so every GET/PUT moved it. Found
// by fuzz_rule.
TEST(FuzzRegression, RuleValueSurvivesGetThenPut) {
  for (const char* value : {"10.00000000031257827", "0.1040000000000000055511151231257827",
                            "10.000000000312579", "0e308"}) {
    std::string body = R"({"scope":"device","scope_id":")" + device +
                       R"(","metric":"power_w_avg","window":"1m","op":">","value":)" + value +
                       R"(,"webhook_url":"https://hooks.example.com/x","webhook_secret":"s"})";
    auto parsed = rules::parse_rule(body, rules::rule_limits{});
    ASSERT_TRUE(std::holds_alternative<rules::alert_rule>(parsed)) << value;
    auto rule = std::get<rules::alert_rule>(parsed);
    EXPECT_EQ(rule.threshold, std::strtod(value, nullptr)) << value;
    auto put = rules::render_rule(rule);
    put.pop_back();
    put += R"(,"webhook_secret":"s"})";
    auto again = rules::parse_rule(put, rules::rule_limits{});
    ASSERT_TRUE(std::holds_alternative<rules::alert_rule>(again)) << put;
    EXPECT_EQ(std::get<rules::alert_rule>(again).threshold, rule.threshold) << put;
  }
}

// tests/fuzz/route_patterns.hpp is what fuzz_router routes against; it must be the server's
// table (add a feature's route there when this fails).
TEST(RoutePatterns, FuzzListMatchesServer) {
  auto env = std::make_shared<const http::route_env>();
  http::route_table table;
  http::add_analytics_routes(table, env);
  http::add_ingest_routes(table, env);
  http::add_system_routes(table, env);
  rules::add_alert_routes(table, env);
  http::add_admin_routes(table, env);
  http::add_ui_routes(table);
  std::set<std::tuple<std::string, std::string, std::string>> server, fuzz;
  for (auto& r : table.routes())
    server.emplace(r.method, r.pattern, r.name);
  for (auto& p : fuzz::route_patterns)
    fuzz.emplace(p.method, p.pattern, p.name);
  for (auto& [m, p, n] : server)
    EXPECT_TRUE(fuzz.count({m, p, n})) << "missing in tests/fuzz/route_patterns.hpp: " << m
                                       << " " << p << " (" << n << ")";
  for (auto& [m, p, n] : fuzz)
    EXPECT_TRUE(server.count({m, p, n})) << "not a server route: " << m << " " << p;
}
