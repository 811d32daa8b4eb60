#include "common/open_loop_schedule.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace joule::bench {

open_loop_schedule::open_loop_schedule(double rate, std::chrono::nanoseconds duration)
    : rate_(rate) {
  if (!(rate > 0))
    throw std::invalid_argument("rate must be positive");
  double n = std::floor(rate * std::chrono::duration<double>(duration).count());
  count_ = std::max<uint64_t>(1, static_cast<uint64_t>(n));
}

std::chrono::nanoseconds open_loop_schedule::offset(uint64_t i) const {
  // Computed from i each time (not accumulated) so rounding never drifts.
  return std::chrono::nanoseconds(static_cast<int64_t>(static_cast<double>(i) * 1e9 / rate_));
}

uint64_t open_loop_schedule::due_by(std::chrono::nanoseconds elapsed) const {
  if (elapsed.count() < 0)
    return 0;
  auto n = static_cast<uint64_t>(std::floor(static_cast<double>(elapsed.count()) * rate_ / 1e9)) + 1;
  // Correct the floating-point estimate against offset() so both agree exactly.
  while (n > 0 && offset(n - 1) > elapsed)
    --n;
  while (n < count_ && offset(n) <= elapsed)
    ++n;
  return std::min(n, count_);
}

} // namespace joule::bench
