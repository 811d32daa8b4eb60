#include <gtest/gtest.h>

#include <cstdio>
#include <ctime>
#include <string>

#include "core/timefmt.hpp"

using namespace joule;

TEST(Rfc3339, RoundTripsAndOffsets) {
  auto t = parse_rfc3339("2026-11-27T12:00:00Z");
  ASSERT_TRUE(t);
  EXPECT_EQ(*t, 1795780800LL * micros_per_second);
  EXPECT_EQ(format_rfc3339(*t), "2026-11-27T12:00:00Z");
  EXPECT_EQ(parse_rfc3339("2026-11-27T13:30:00+01:30"), *t);
  EXPECT_EQ(format_rfc3339(*parse_rfc3339("2024-02-29T23:59:59.5Z")), "2024-02-29T23:59:59.5Z");
  EXPECT_EQ(format_rfc3339(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(format_rfc3339(-1), "1969-12-31T23:59:59.999999Z");
}

TEST(Rfc3339, RejectsMalformed) {
  for (auto* bad : {"2026-11-27", "2026-11-27T12:00:00", "2026-13-01T00:00:00Z",
                    "2026-02-30T00:00:00Z", "2025-02-29T00:00:00Z", "2026-11-27T24:00:00Z",
                    "yesterday", "2026-11-27T12:00:00Zjunk", "2026-11-27T12:00:00.Z", ""})
    EXPECT_FALSE(parse_rfc3339(bad)) << bad;
}

TEST(Buckets, FloorAndCeilIncludingNegative) {
  EXPECT_EQ(floor_to(125, 60), 120);
  EXPECT_EQ(ceil_to(125, 60), 180);
  EXPECT_EQ(ceil_to(120, 60), 120);
  EXPECT_EQ(floor_to(-1, 60), -60);
}

// The digit-by-digit formatter writes what the snprintf one did, for any instant and fraction.
TEST(Rfc3339, FormatsLikeThePrintfReference) {
  auto reference = [](joule::micros_t t) {
    auto secs = joule::floor_to(t, joule::micros_per_second) / joule::micros_per_second;
    auto frac = t - secs * joule::micros_per_second;
    std::time_t tt = static_cast<std::time_t>(secs);
    std::tm tm{};
    gmtime_r(&tt, &tm);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1,
                  tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    std::string out = buf;
    if (frac) {
      std::snprintf(buf, sizeof buf, ".%06lld", static_cast<long long>(frac));
      out += buf;
      while (out.back() == '0')
        out.pop_back();
    }
    return out + "Z";
  };
  std::uint64_t x = 88172645463325252ull;
  for (int i = 0; i < 20000; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    // From 1900 to 2200, with and without a fraction.
    auto t = static_cast<joule::micros_t>(x % 9'467'280'000'000'000ull) - 2'208'988'800'000'000;
    if (i % 3 == 0)
      t = joule::floor_to(t, joule::micros_per_second);
    ASSERT_EQ(joule::format_rfc3339(t), reference(t)) << t;
  }
  EXPECT_EQ(joule::format_rfc3339(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(joule::format_rfc3339(-1), "1969-12-31T23:59:59.999999Z");
  EXPECT_EQ(joule::format_rfc3339(50), "1970-01-01T00:00:00.00005Z");
}
