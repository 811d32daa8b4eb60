// The shared JSON body parser (pure): iterative, depth-capped, strict; and the ingest
// validation that uses it (max_age, the invalid_json code for too-deep bodies).
#include <gtest/gtest.h>

#include <chrono>

#include "core/timefmt.hpp"
#include "http/ingest_parse.hpp"
#include "http/json_parse.hpp"

using joule::http::json_error;
using joule::http::parse_json;

namespace {

std::string arrays(int depth, const std::string& inner = "") {
  return std::string(depth, '[') + inner + std::string(depth, ']');
}

// {"a":{"a":...{}...}}: `depth` objects.
std::string objects(int depth) {
  std::string s;
  for (int i = 1; i < depth; ++i)
    s += "{\"a\":";
  s += "{}";
  for (int i = 1; i < depth; ++i)
    s += "}";
  return s;
}

TEST(JsonParse, DepthExactlyAtTheCapIsAcceptedOneMoreIsNot) {
  rapidjson::Document d;
  EXPECT_FALSE(parse_json(arrays(32, "1"), d, 32));
  ASSERT_TRUE(d.IsArray());
  const rapidjson::Value* v = &d;
  int depth = 0;
  while (v->IsArray()) {
    ++depth;
    ASSERT_EQ(v->Size(), 1u);
    v = &(*v)[0];
  }
  EXPECT_EQ(depth, 32);
  EXPECT_EQ(v->GetInt(), 1);

  auto e = parse_json(arrays(33), d, 32);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->kind, json_error::kind_t::too_deep);
  EXPECT_EQ(e->offset, 32u) << "stops at the 33rd '[' without reading further";
  EXPECT_NE(e->message.find("nesting deeper than 32 levels"), std::string::npos) << e->message;
  EXPECT_TRUE(d.IsNull()) << "nothing half-built is left behind";

  EXPECT_FALSE(parse_json(objects(32), d, 32));
  EXPECT_TRUE(d.IsObject());
  auto o = parse_json(objects(33), d, 32);
  ASSERT_TRUE(o);
  EXPECT_EQ(o->kind, json_error::kind_t::too_deep);
}

TEST(JsonParse, DepthCountsNestingNotContainers) {
  rapidjson::Document d;
  // Siblings do not add up: 1000 arrays side by side are depth 2.
  std::string wide = "[";
  for (int i = 0; i < 1000; ++i)
    wide += (i ? ",[]" : "[]");
  wide += "]";
  EXPECT_FALSE(parse_json(wide, d, 2));
  EXPECT_EQ(d.Size(), 1000u);
  // Mixed objects and arrays count alike: {"a":[{"b":[]}]} is 4.
  EXPECT_FALSE(parse_json("{\"a\":[{\"b\":[]}]}", d, 4));
  EXPECT_TRUE(parse_json("{\"a\":[{\"b\":[]}]}", d, 3));
  // Scalars are depth 0.
  EXPECT_FALSE(parse_json("42", d, 1));
  EXPECT_EQ(d.GetInt(), 42);
}

TEST(JsonParse, HostileDepthsFailFastWithoutTouchingTheStack) {
  rapidjson::Document d;
  // 200,000 '[' overflowed the recursive parser's stack (the server died); 5 M now just
  // stops at the cap.
  for (std::size_t n : {200'000u, 5'000'000u}) {
    auto e = parse_json(std::string(n, '['), d, 32);
    ASSERT_TRUE(e);
    EXPECT_EQ(e->kind, json_error::kind_t::too_deep);
    // It stops at the cap instead of reading (or building) the rest of the body.
    EXPECT_LT(e->offset, 100u);
  }
  // Even with a cap as high as the input, the iterative parser recurses not at all.
  EXPECT_FALSE(parse_json(arrays(200'000), d, 1'000'000));
  auto unclosed = parse_json(std::string(200'000, '['), d, 1'000'000);
  ASSERT_TRUE(unclosed);
  EXPECT_EQ(unclosed->kind, json_error::kind_t::syntax);
}

TEST(JsonParse, StrictJsonWithOffsets) {
  rapidjson::Document d;
  auto nan = parse_json("{\"x\":NaN}", d, 32);
  ASSERT_TRUE(nan);
  EXPECT_EQ(nan->kind, json_error::kind_t::syntax);
  EXPECT_NE(nan->message.find("NaN and Infinity are not numbers"), std::string::npos);
  auto trailing = parse_json("{} x", d, 32);
  ASSERT_TRUE(trailing);
  EXPECT_NE(trailing->message.find("offset 3"), std::string::npos) << trailing->message;
  EXPECT_TRUE(parse_json("", d, 32));
  auto nul = parse_json(std::string("{\"a\":1}\0{}", 10), d, 32);
  ASSERT_TRUE(nul) << "a NUL byte must not end the input early";
  EXPECT_EQ(nul->offset, 7u);
  // Strings are copied: the document outlives the body.
  {
    std::string body = "{\"k\":\"value\"}";
    EXPECT_FALSE(parse_json(body, d, 32));
  }
  EXPECT_STREQ(d["k"].GetString(), "value");
  // Full precision, as the ingest path always had.
  EXPECT_FALSE(parse_json("[0.1]", d, 32));
  EXPECT_EQ(d[0].GetDouble(), 0.1);
}

joule::http::ingest_limits limits_at(std::int64_t now) {
  joule::http::ingest_limits l;
  l.now = now;
  l.max_future_skew_us = 300 * joule::micros_per_second;
  l.max_age_us = 7 * 86400 * joule::micros_per_second;
  return l;
}

std::string batch_at(std::int64_t ts) {
  return "{\"readings\":[{\"ts\":\"" + joule::format_rfc3339(ts) +
         "\",\"device_id\":\"00000000-0000-4000-8000-000000000001\",\"power_w\":1,"
         "\"energy_wh\":1}]}";
}

TEST(IngestParse, MaxAgeBoundsTheOldestReading) {
  const std::int64_t now = 1'800'000'000 * joule::micros_per_second;
  const auto age = 7 * 86400 * joule::micros_per_second;
  EXPECT_TRUE(joule::http::parse_readings(batch_at(now - age), limits_at(now)).errors.empty());
  auto old = joule::http::parse_readings(batch_at(now - age - 1), limits_at(now));
  ASSERT_EQ(old.errors.size(), 1u);
  EXPECT_EQ(old.errors[0].index, 0);
  EXPECT_EQ(old.errors[0].field, "ts");
  EXPECT_EQ(old.code, "invalid_readings");
  EXPECT_TRUE(old.readings.empty());
  auto body = joule::http::render_reading_errors(old);
  EXPECT_NE(body.find("readings[0].ts is more than 7d old (ingest.max_age)"), std::string::npos)
      << body;
}

TEST(IngestParse, TooDeepIsInvalidJsonAndOtherSyntaxErrorsStayInvalidReadings) {
  const std::int64_t now = 1'800'000'000 * joule::micros_per_second;
  auto deep = joule::http::parse_readings(std::string(200'000, '['), limits_at(now));
  EXPECT_EQ(deep.code, "invalid_json");
  auto body = joule::http::render_reading_errors(deep);
  EXPECT_NE(body.find("\"code\":\"invalid_json\""), std::string::npos) << body;
  EXPECT_NE(body.find("nesting deeper than 32"), std::string::npos) << body;
  auto broken = joule::http::parse_readings("{\"readings\":[", limits_at(now));
  EXPECT_EQ(broken.code, "invalid_readings");
  ASSERT_FALSE(broken.errors.empty());
  // The cap is the setting: a batch is 3 deep, so a cap of 3 still takes one.
  auto l = limits_at(now);
  l.json_max_depth = 3;
  EXPECT_TRUE(joule::http::parse_readings(batch_at(now), l).errors.empty());
}

} // namespace

// PostgreSQL text and jsonb cannot store U+0000 and the database is UTF8: such bodies are
// malformed input (400), not a database error (500) when they reach an INSERT.
TEST(JsonParse, EscapedNulAndInvalidUtf8AreRefused) {
  rapidjson::Document doc;
  auto nul_value = parse_json(R"({"team":"a\u0000b"})", doc, 32);
  ASSERT_TRUE(nul_value);
  EXPECT_NE(nul_value->message.find("U+0000"), std::string::npos) << nul_value->message;
  EXPECT_TRUE(parse_json(R"({"a\u0000":"b"})", doc, 32));
  EXPECT_TRUE(parse_json("{\"name\":\"\xff\xfe\"}", doc, 32));
  EXPECT_TRUE(parse_json("{\"name\":\"\xc3\x28\"}", doc, 32));
  // Valid UTF-8 and other escapes still pass.
  EXPECT_FALSE(parse_json("{\"name\":\"K\xc3\xbc" "che \\u00e9 \\n\"}", doc, 32));
  ASSERT_TRUE(doc.IsObject());
  EXPECT_EQ(std::string(doc["name"].GetString()), "K\xc3\xbc" "che \xc3\xa9 \n");
}
