#pragma once
// Half-open time ranges [lo, hi) in µs and the set operations the refresh needs.
// Pure functions, unit-tested in tests/db/ranges_test.cpp.

#include <cstdint>
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

} // namespace joule::db
