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

TEST(Ranges, MergeLoggedKeepsTheEarliestLogTime) {
  auto m = merge_logged({{{100, 200}, 5}, {{0, 50}, 9}, {{50, 60}, 3}, {{150, 300}, 1},
                         {{400, 400}, 0}, {{500, 510}, 7}});
  ASSERT_EQ(m.size(), 3u);
  EXPECT_EQ(m[0].r, (range{0, 60}));  // adjacent ranges merge
  EXPECT_EQ(m[0].logged_at, 3);
  EXPECT_EQ(m[1].r, (range{100, 300}));
  EXPECT_EQ(m[1].logged_at, 1);
  EXPECT_EQ(m[2].r, (range{500, 510}));
  EXPECT_TRUE(merge_logged({}).empty());
}

TEST(Ranges, TakeBudgetCutsOnBucketsOldestFirst) {
  // 25 of budget over ranges of 20 and 30 with 10-wide buckets: the first whole; the 5 left
  // over does not buy a whole bucket of the second.
  auto [taken, rest] = take_budget({{0, 20}, {40, 70}}, 25, 10, true);
  EXPECT_EQ(taken, (range_set{{0, 20}}));
  EXPECT_EQ(rest, (range_set{{40, 70}}));
  std::tie(taken, rest) = take_budget({{0, 20}, {40, 70}}, 35, 10, true);
  EXPECT_EQ(span(taken), 30);
  EXPECT_EQ(taken.back(), (range{40, 50}));
  EXPECT_EQ(rest, (range_set{{50, 70}}));
  // A budget below one bucket still takes one when nothing else was done this cycle...
  std::tie(taken, rest) = take_budget({{40, 70}}, 3, 10, true);
  EXPECT_EQ(taken, (range_set{{40, 50}}));
  EXPECT_EQ(rest, (range_set{{50, 70}}));
  // ...and nothing when the cycle already did its work.
  std::tie(taken, rest) = take_budget({{40, 70}}, 0, 10, false);
  EXPECT_TRUE(taken.empty());
  EXPECT_EQ(rest, (range_set{{40, 70}}));
  // Everything fits.
  std::tie(taken, rest) = take_budget({{0, 20}, {40, 70}}, INT64_MAX, 10, false);
  EXPECT_EQ(span(taken), 50);
  EXPECT_TRUE(rest.empty());
}
