#include <gtest/gtest.h>

#include "db/ranges.hpp"

using namespace joule::db;

TEST(Ranges, NormalizeMergesOverlapsAndAdjacency) {
  auto r = normalize({{10, 20}, {0, 5}, {5, 8}, {15, 30}, {40, 40}});
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0], (range{0, 8}));
  EXPECT_EQ(r[1], (range{10, 30}));
}

TEST(Ranges, SubtractAndClip) {
  auto r = subtract({{0, 100}}, {{10, 20}, {50, 60}, {90, 200}});
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[0], (range{0, 10}));
  EXPECT_EQ(r[1], (range{20, 50}));
  EXPECT_EQ(r[2], (range{60, 90}));
  EXPECT_TRUE(subtract({{0, 10}}, {{0, 10}}).empty());
  auto c = clip({{0, 10}, {20, 30}}, 5, 25);
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c[0], (range{5, 10}));
  EXPECT_EQ(c[1], (range{20, 25}));
  EXPECT_EQ(span(c), 10);
}

TEST(Ranges, WidenCoversWholeBuckets) {
  EXPECT_EQ(widen_inclusive(61, 61, 60), (range{60, 120}));
  EXPECT_EQ(widen_inclusive(60, 120, 60), (range{60, 180}));
  EXPECT_EQ(widen_inclusive(-5, -1, 60), (range{-60, 0}));
}
