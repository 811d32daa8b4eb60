// The stored text of device answers' settled parts (http/live_payload.hpp): what the encoders
// write reads back exactly, and truncated or corrupt text (Redis under a versioned key, a
// memo) is rejected as a whole (the caller reads the part from the database), never read past
// its end or half-used.
#include <gtest/gtest.h>

#include <cmath>

#include "http/live_payload.hpp"

using namespace joule;
using namespace joule::http;

namespace {

std::vector<db::power_point> sample_points() {
  return {{1'796'000'400'000'000, 1234.5, 3000},
          {1'796'000'460'000'000, std::nullopt, std::nullopt},
          {1'796'000'520'000'000, 0.1 + 0.2, std::nullopt},
          {1'796'000'580'000'000, -7.25e-300, 1e300}};
}

hourly sample_hourly() {
  return {{1'796'000'400'000'000,
           {{"00000000-0000-4000-9000-000000000001", 12.5},
            {"00000000-0000-4000-9000-000000000002", 0.1 + 0.2}}},
          {1'796'004'000'000'000, {}},
          {1'796'007'600'000'000, {{"00000000-0000-4000-9000-000000000003", 1e-9}}}};
}

// Every prefix of `text` shorter than it, and a few corruptions of it.
std::vector<std::string> damaged(const std::string& text) {
  std::vector<std::string> out;
  for (std::size_t n = 1; n < text.size(); ++n)
    out.push_back(text.substr(0, n));
  for (std::size_t i = 0; i < text.size(); i += 3) {
    auto t = text;
    t[i] = 'x';
    out.push_back(t);
    t = text;
    t.erase(i, 1);
    out.push_back(t);
  }
  return out;
}

} // namespace

TEST(LivePayload, PointsReadBackExactly) {
  std::string text;
  append_points(text, sample_points());
  auto back = parse_points(text);
  ASSERT_TRUE(back);
  ASSERT_EQ(back->size(), 4u);
  for (std::size_t i = 0; i < 4; ++i) {
    EXPECT_EQ((*back)[i].t, sample_points()[i].t);
    EXPECT_EQ((*back)[i].avg, sample_points()[i].avg);
    EXPECT_EQ((*back)[i].max, sample_points()[i].max);
  }
  EXPECT_TRUE(points_well_formed(text));
  EXPECT_TRUE(parse_points("") && parse_points("")->empty());
}

TEST(LivePayload, TruncatedOrCorruptPointsAreRejectedWhole) {
  std::string text;
  append_points(text, sample_points());
  int rejected = 0;
  for (auto& bad : damaged(text)) {
    auto p = parse_points(bad);  // must not crash (ASan: no read past the end)
    EXPECT_EQ(p.has_value(), points_well_formed(bad)) << bad;
    rejected += !p;
  }
  EXPECT_GT(rejected, 0);
  // Cut right after a number (the crash the review found: no ',' after the time).
  for (const char* bad : {"1796000400000000", "1796000400000000,", "1796000400000000,12",
                          "1796000400000000,12,", "1796000400000000,12,13", ",,;", "a,1,2;",
                          "1,1,2;2", "1,1x,2;", "1, 1,2;", "1,1,2;;", "1,1,2,3;"}) {
    EXPECT_FALSE(parse_points(bad)) << bad;
    EXPECT_FALSE(points_well_formed(bad)) << bad;
  }
}

TEST(LivePayload, HourlyReadsBackExactly) {
  auto text = encode_hourly(sample_hourly());
  auto back = decode_hourly(text);
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, sample_hourly());
  EXPECT_TRUE(hourly_well_formed(text));
  EXPECT_TRUE(decode_hourly("") && decode_hourly("")->empty());
}

TEST(LivePayload, TruncatedOrCorruptHourlyIsRejectedWhole) {
  auto text = encode_hourly(sample_hourly());
  int rejected = 0;
  for (auto& bad : damaged(text)) {
    auto h = decode_hourly(bad);
    EXPECT_EQ(h.has_value(), hourly_well_formed(bad)) << bad;
    rejected += !h;
  }
  EXPECT_GT(rejected, 0);
  for (const char* bad : {"1796000400000000", "1796000400000000#", "1796000400000000#a=1,",
                          "1796000400000000#a=1", "1796000400000000#a=", "#a=1,;", "x#;",
                          "1#=1,;", "1#a=1x,;", "1#a;=1,;", "1#a=1,;2"}) {
    EXPECT_FALSE(decode_hourly(bad)) << bad;
    EXPECT_FALSE(hourly_well_formed(bad)) << bad;
  }
}

TEST(LivePayload, PartsReadBackAndMalformedFramesAreRejected) {
  live_part p{1'796'000'400'000'000, 1'796'004'000'000'000, "1796000400000000:3,x:4",
              "1,2,3;|odd|"};
  auto back = decode_part(encode_part(p));
  ASSERT_TRUE(back);
  EXPECT_EQ(back->lo, p.lo);
  EXPECT_EQ(back->hi, p.hi);
  EXPECT_EQ(back->versions, p.versions);
  EXPECT_EQ(back->payload, p.payload);
  for (const char* bad : {"", "|", "||", "1|2|v", "1|2", "x|2|v|", "1|y|v|", "1 |2|v|",
                          "|2|v|", "1||v|", "5|4|v|", "99999999999999999999|1|v|"})
    EXPECT_FALSE(decode_part(bad)) << bad;
  EXPECT_TRUE(decode_part("4|4||"));
}
