#include <gtest/gtest.h>

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
