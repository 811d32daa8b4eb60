#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "common/percentiles.hpp"

using namespace joule::bench;

namespace {

TEST(Percentiles, NearestRankOnKnownValues) {
  std::vector<int64_t> v;
  for (int64_t i = 1; i <= 100; ++i)
    v.push_back(i);
  EXPECT_EQ(percentile_nearest_rank(v, 0.50), 50);
  EXPECT_EQ(percentile_nearest_rank(v, 0.95), 95);
  EXPECT_EQ(percentile_nearest_rank(v, 0.99), 99);
  EXPECT_EQ(percentile_nearest_rank(v, 1.0), 100);
  EXPECT_EQ(percentile_nearest_rank(v, 0.001), 1);
}

TEST(Percentiles, SmallSamples) {
  EXPECT_EQ(percentile_nearest_rank({}, 0.5), 0);
  EXPECT_EQ(percentile_nearest_rank({7}, 0.95), 7);
  // Nearest rank never interpolates: with 10 samples p95 is the largest.
  std::vector<int64_t> ten = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  EXPECT_EQ(percentile_nearest_rank(ten, 0.95), 10);
  EXPECT_EQ(percentile_nearest_rank(ten, 0.90), 9);
}

TEST(Percentiles, SummarySortsAndConvertsToMilliseconds) {
  std::vector<int64_t> ns;
  for (int i = 1000; i >= 1; --i)
    ns.push_back(int64_t(i) * 1'000'000); // 1 … 1000 ms, shuffled order
  std::shuffle(ns.begin(), ns.end(), std::mt19937(1));
  auto s = summarize_latencies(ns);
  EXPECT_EQ(s.count, 1000u);
  EXPECT_DOUBLE_EQ(s.p50_ms, 500.0);
  EXPECT_DOUBLE_EQ(s.p95_ms, 950.0);
  EXPECT_DOUBLE_EQ(s.p99_ms, 990.0);
  EXPECT_DOUBLE_EQ(s.max_ms, 1000.0);
  EXPECT_NEAR(s.mean_ms, 500.5, 1e-9);
  EXPECT_TRUE(std::is_sorted(ns.begin(), ns.end()));
}

} // namespace
