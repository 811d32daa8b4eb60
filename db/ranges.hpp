#pragma once
// Half-open time ranges [lo, hi) in µs and the set operations the refresh needs.
// Pure functions, unit-tested in tests/db/ranges_test.cpp.

#include <cstdint>
#include <utility>
#include <vector>

namespace joule::db {

struct range {
  std::int64_t lo = 0;
  std::int64_t hi = 0;
  bool empty() const { return hi <= lo; }
  friend bool operator==(const range& a, const range& b) { return a.lo == b.lo && a.hi == b.hi; }
};

using range_set = std::vector<range>;

/// Sorted, non-overlapping, non-adjacent, no empty ranges.
range_set normalize(range_set rs);

/// Parts of `a` not covered by `b` (both normalized or not; result normalized).
range_set subtract(const range_set& a, const range_set& b);

/// Parts of `a` inside [lo, hi).
range_set clip(const range_set& a, std::int64_t lo, std::int64_t hi);

/// Widens to whole buckets of `width` (epoch origin): [floor(lo), floor(hi_inclusive) + width).
range widen_inclusive(std::int64_t lo, std::int64_t hi_inclusive, std::int64_t width);

/// Total length covered.
std::int64_t span(const range_set& rs);

/// A range of the invalidation log with the time its (earliest) write was logged.
struct logged_range {
  range r;
  std::int64_t logged_at = 0;
};

/// Coalesces overlapping and adjacent ranges; each result keeps the earliest logged_at of
/// the ranges it absorbed (so fresh_as_of never claims a write that is not reflected).
/// Sorted by lo, no empty ranges.
std::vector<logged_range> merge_logged(std::vector<logged_range> rs);

/// Splits normalized `rs` into what fits into `budget` of total length, taken from the
/// oldest end and cut on multiples of `width`, and the rest. With `at_least_one`, one bucket
/// is taken even when the budget is smaller (so a cycle always makes progress).
std::pair<range_set, range_set> take_budget(const range_set& rs, std::int64_t budget,
                                            std::int64_t width, bool at_least_one);

} // namespace joule::db
