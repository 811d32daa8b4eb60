#include <gtest/gtest.h>

#include <set>

#include "sim/fleet.hpp"

using namespace joule::bench;

namespace {

TEST(Fleet, SameSeedSameIds) {
  const auto a = make_fleet({100, 3, 12, 5});
  const auto b = make_fleet({100, 3, 12, 5});
  ASSERT_EQ(a.devices.size(), b.devices.size());
  for (size_t i = 0; i < a.devices.size(); ++i) {
    EXPECT_EQ(a.devices[i].id, b.devices[i].id);
    EXPECT_EQ(a.devices[i].household_id, b.devices[i].household_id);
    EXPECT_EQ(a.devices[i].name, b.devices[i].name);
  }
}

TEST(Fleet, DifferentSeedDifferentIds) {
  const auto a = make_fleet({10, 3, 12, 5});
  const auto b = make_fleet({10, 3, 12, 6});
  EXPECT_NE(a.households[0].id, b.households[0].id);
  EXPECT_NE(a.devices[0].id, b.devices[0].id);
}

TEST(Fleet, LargerFleetExtendsSmallerOne) {
  const auto small = make_fleet({10, 3, 12, 9});
  const auto large = make_fleet({20, 3, 12, 9});
  for (size_t i = 0; i < small.devices.size(); ++i)
    EXPECT_EQ(small.devices[i].id, large.devices[i].id);
}

TEST(Fleet, DeviceCountsWithinBoundsAndIdsUnique) {
  const auto f = make_fleet({1000, 3, 12, 1});
  std::set<std::string> ids;
  size_t total = 0;
  for (const auto& h : f.households) {
    EXPECT_GE(h.device_count, 3u);
    EXPECT_LE(h.device_count, 12u);
    total += h.device_count;
    for (uint32_t i = 0; i < h.device_count; ++i)
      EXPECT_EQ(f.devices[h.first_device + i].household_id, h.id);
  }
  EXPECT_EQ(total, f.devices.size());
  for (const auto& d : f.devices)
    ids.insert(d.id.to_string());
  EXPECT_EQ(ids.size(), f.devices.size());
  // The standard dataset: about 5,000 devices for 1,000 households.
  EXPECT_GT(f.devices.size(), 4500u);
  EXPECT_LT(f.devices.size(), 5500u);
}

TEST(Fleet, IdsAreVersion4Shaped) {
  const auto f = make_fleet({3, 3, 3, 1});
  const auto s = f.devices[0].id.to_string();
  ASSERT_EQ(s.size(), 36u);
  EXPECT_EQ(s[14], '4');
  EXPECT_NE(std::string("89ab").find(s[19]), std::string::npos);
  uuid back;
  ASSERT_TRUE(uuid::parse(s, back));
  EXPECT_EQ(back, f.devices[0].id);
}

TEST(Fleet, RejectsInconsistentParameters) {
  EXPECT_THROW(make_fleet({10, 5, 3, 1}), std::invalid_argument);
  EXPECT_THROW(make_fleet({10, 0, 3, 1}), std::invalid_argument);
}

} // namespace
