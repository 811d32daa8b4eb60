#include "http/settled_parts.hpp"

#include <algorithm>
#include <limits>
#include <map>

#include "core/timefmt.hpp"
#include "http/render.hpp"

namespace joule::http {
namespace {

constexpr std::int64_t five_min_us = 5 * 60 * micros_per_second;
constexpr std::int64_t hour_us = 60 * 60 * micros_per_second;

// Whether the hours [from, to) are at the same versions in the part as in the snapshot (an
// hour without a version was never rewritten).
bool same_versions(const cache::series_part& part,
                   const std::map<std::int64_t, std::int64_t>* snap_versions, std::int64_t from,
                   std::int64_t to) {
  auto p = std::lower_bound(part.versions.begin(), part.versions.end(),
                            std::make_pair(from, std::numeric_limits<std::int64_t>::min()));
  auto p_end = std::lower_bound(p, part.versions.end(),
                                std::make_pair(to, std::numeric_limits<std::int64_t>::min()));
  if (!snap_versions)
    return p == p_end;
  auto v = snap_versions->lower_bound(from);
  for (; v != snap_versions->end() && v->first < to; ++v, ++p)
    if (p == p_end || p->first != v->first || p->second != v->second)
      return false;
  return p == p_end;
}

} // namespace

std::shared_ptr<const cache::series_part> settled_from_memory(cache::settled_series& store,
                                                              const std::string& key,
                                                              const db::live_snapshot& snap,
                                                              const std::string& household,
                                                              std::int64_t step,
                                                              std::int64_t start,
                                                              std::int64_t split) {
  auto part = store.find(key);
  if (!part || part->lo > start)
    return nullptr;
  const std::map<std::int64_t, std::int64_t>* versions = nullptr;
  if (auto it = snap.versions.find("household_5m"); it != snap.versions.end())
    versions = &it->second;
  if (!same_versions(*part, versions, floor_to(start, hour_us), std::min(part->hi, split))) {
    // Read again; the part read then replaces this one (see keep_settled).
    store.drop(key, part);
    return nullptr;
  }
  if (part->hi >= split)
    return part;
  if (step != five_min_us || part->hi < snap.household_lo)
    return nullptr;
  auto next = std::make_shared<cache::series_part>();
  // Only what a window ending here can still ask for: the versions were checked from there.
  next->lo = start;
  next->hi = split;
  auto kept = part->slice(next->lo, part->hi);
  next->text.assign(kept.data(), kept.size());
  const auto base = kept.empty() ? 0 : static_cast<std::size_t>(kept.data() - part->text.data());
  for (auto& [t, at] : part->elements)
    if (t >= next->lo && t < part->hi)
      next->elements.emplace_back(t, at - base);
  energy_points added;
  if (auto it = snap.household_5m.find(household); it != snap.household_5m.end())
    for (auto& b : it->second)
      if (b.start >= part->hi && b.start < split)
        added.emplace_back(b.start, b.energy_sum);
  append_energy_elements(*next, added);
  if (versions)
    for (auto v = versions->lower_bound(floor_to(next->lo, hour_us));
         v != versions->end() && v->first < split; ++v)
      next->versions.emplace_back(v->first, v->second);
  store.put(key, next);
  return next;
}

std::shared_ptr<const cache::series_part> settled_from_points(std::int64_t lo, std::int64_t hi,
                                                              const std::string& versions,
                                                              const energy_points& points) {
  auto part = std::make_shared<cache::series_part>();
  part->lo = lo;
  part->hi = hi;
  if (!cache::parse_versions(versions, part->versions))
    return nullptr;
  append_energy_elements(*part, points);
  return part;
}

void keep_settled(cache::settled_series& store, const std::string& key,
                  std::shared_ptr<const cache::series_part> part) {
  auto held = store.find(key);
  if (!held || held->hi <= part->hi)
    store.put(key, std::move(part));
}

std::string settled_series_key(const std::string& household, std::int64_t step) {
  return "household_5m:" + household + ":" + std::to_string(step);
}

} // namespace joule::http
