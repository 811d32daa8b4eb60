#pragma once

#include <chrono>
#include <cstdint>

namespace joule::bench {

/// The fixed timetable of an open-loop run: request i is due at t0 + i / rate, whatever
/// happened to the requests before it. Latency is measured from this intended time, so a
/// server that stalls is charged for every request it delayed (no coordinated omission).
class open_loop_schedule {
public:
  /// `rate` requests per second (> 0) for `duration`.
  open_loop_schedule(double rate, std::chrono::nanoseconds duration);

  /// Number of requests in the run: floor(rate × duration), at least 1.
  uint64_t count() const { return count_; }
  /// Offset of request i from t0.
  std::chrono::nanoseconds offset(uint64_t i) const;
  /// How many requests are due by `elapsed` after t0 (those with offset ≤ elapsed).
  uint64_t due_by(std::chrono::nanoseconds elapsed) const;

private:
  double rate_;
  uint64_t count_;
};

} // namespace joule::bench
