#include "db/ranges.hpp"

#include <algorithm>

#include "core/timefmt.hpp"

namespace joule::db {

range_set normalize(range_set rs) {
  rs.erase(std::remove_if(rs.begin(), rs.end(), [](const range& r) { return r.empty(); }),
           rs.end());
  std::sort(rs.begin(), rs.end(), [](const range& a, const range& b) { return a.lo < b.lo; });
  range_set out;
  for (auto& r : rs) {
    if (!out.empty() && r.lo <= out.back().hi)
      out.back().hi = std::max(out.back().hi, r.hi);
    else
      out.push_back(r);
  }
  return out;
}

range_set subtract(const range_set& a, const range_set& b) {
  auto bs = normalize(b);
  range_set out;
  for (auto r : normalize(a)) {
    for (auto& cut : bs) {
      if (cut.hi <= r.lo || cut.lo >= r.hi)
        continue;
      if (cut.lo > r.lo)
        out.push_back({r.lo, cut.lo});
      r.lo = std::max(r.lo, cut.hi);
      if (r.empty())
        break;
    }
    if (!r.empty())
      out.push_back(r);
  }
  return normalize(out);
}

range_set clip(const range_set& a, std::int64_t lo, std::int64_t hi) {
  range_set out;
  for (auto& r : a)
    out.push_back({std::max(r.lo, lo), std::min(r.hi, hi)});
  return normalize(out);
}

range widen_inclusive(std::int64_t lo, std::int64_t hi_inclusive, std::int64_t width) {
  return {floor_to(lo, width), floor_to(hi_inclusive, width) + width};
}

std::int64_t span(const range_set& rs) {
  std::int64_t total = 0;
  for (auto& r : rs)
    total += r.hi - r.lo;
  return total;
}

std::vector<logged_range> merge_logged(std::vector<logged_range> rs) {
  rs.erase(std::remove_if(rs.begin(), rs.end(), [](const logged_range& x) { return x.r.empty(); }),
           rs.end());
  std::sort(rs.begin(), rs.end(),
            [](const logged_range& a, const logged_range& b) { return a.r.lo < b.r.lo; });
  std::vector<logged_range> out;
  for (auto& x : rs) {
    if (!out.empty() && x.r.lo <= out.back().r.hi) {
      out.back().r.hi = std::max(out.back().r.hi, x.r.hi);
      out.back().logged_at = std::min(out.back().logged_at, x.logged_at);
    } else {
      out.push_back(x);
    }
  }
  return out;
}

std::pair<range_set, range_set> take_budget(const range_set& rs, std::int64_t budget,
                                            std::int64_t width, bool at_least_one) {
  range_set taken, rest;
  for (auto r : rs) {
    if (!rest.empty()) {
      rest.push_back(r);
      continue;
    }
    if (r.hi - r.lo <= budget) {
      taken.push_back(r);
      budget -= r.hi - r.lo;
      continue;
    }
    std::int64_t cut = floor_to(r.lo + std::max<std::int64_t>(budget, 0), width);
    if (cut <= r.lo && at_least_one && taken.empty())
      cut = floor_to(r.lo, width) + width;
    if (cut > r.lo) {
      taken.push_back({r.lo, std::min(cut, r.hi)});
      if (cut < r.hi)
        rest.push_back({cut, r.hi});
    } else {
      rest.push_back(r);
    }
    budget = 0;
  }
  return {taken, rest};
}

} // namespace joule::db
