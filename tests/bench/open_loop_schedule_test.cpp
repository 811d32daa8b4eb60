#include <gtest/gtest.h>

#include "common/open_loop_schedule.hpp"

using namespace joule::bench;
using namespace std::chrono;

namespace {

TEST(OpenLoopSchedule, CountAndOffsetsFollowTheRate) {
  open_loop_schedule s(1000, seconds(10));
  EXPECT_EQ(s.count(), 10'000u);
  EXPECT_EQ(s.offset(0), nanoseconds(0));
  EXPECT_EQ(s.offset(1), microseconds(1000));
  EXPECT_EQ(s.offset(9999), microseconds(9'999'000));
}

TEST(OpenLoopSchedule, OffsetsDoNotDependOnWhatHappened) {
  // Request i is due at i/rate no matter how late earlier ones were: no drift over a run.
  open_loop_schedule s(3, seconds(100));
  EXPECT_EQ(s.count(), 300u);
  EXPECT_EQ(s.offset(299), nanoseconds(99'666'666'666));
  EXPECT_EQ(s.offset(3), seconds(1));
}

TEST(OpenLoopSchedule, DueByAgreesWithOffsets) {
  open_loop_schedule s(7000, milliseconds(500));
  for (int64_t us = 0; us < 600'000; us += 37) {
    const auto elapsed = microseconds(us);
    const uint64_t n = s.due_by(elapsed);
    ASSERT_LE(n, s.count());
    if (n > 0) {
      ASSERT_LE(s.offset(n - 1), elapsed);
    }
    if (n < s.count()) {
      ASSERT_GT(s.offset(n), elapsed);
    }
  }
  EXPECT_EQ(s.due_by(nanoseconds(-1)), 0u);
  EXPECT_EQ(s.due_by(nanoseconds(0)), 1u);
  EXPECT_EQ(s.due_by(seconds(5)), s.count());
}

TEST(OpenLoopSchedule, RejectsNonPositiveRate) {
  EXPECT_THROW(open_loop_schedule(0, seconds(1)), std::invalid_argument);
  EXPECT_EQ(open_loop_schedule(0.1, seconds(1)).count(), 1u);
}

} // namespace
