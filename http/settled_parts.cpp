#include "http/settled_parts.hpp"

#include <algorithm>
#include <limits>
#include <map>
#include <optional>

#include "core/timefmt.hpp"
#include "http/render.hpp"

namespace joule::http {
namespace {

constexpr std::int64_t five_min_us = 5 * 60 * micros_per_second;
constexpr std::int64_t hour_us = 60 * 60 * micros_per_second;

// The first hour in [from, to) whose version differs between the part and the snapshot (an
// hour without a version was never rewritten), or nothing when they all agree.
std::optional<std::int64_t> first_changed_hour(
    const cache::series_part& part, const std::map<std::int64_t, std::int64_t>* snap_versions,
    std::int64_t from, std::int64_t to) {
  auto p = std::lower_bound(part.versions.begin(), part.versions.end(),
                            std::make_pair(from, std::numeric_limits<std::int64_t>::min()));
  auto p_end = std::lower_bound(p, part.versions.end(),
                                std::make_pair(to, std::numeric_limits<std::int64_t>::min()));
  std::map<std::int64_t, std::int64_t>::const_iterator v, v_end;
  if (snap_versions) {
    v = snap_versions->lower_bound(from);
    v_end = snap_versions->lower_bound(to);
  }
  while (p != p_end || (snap_versions && v != v_end)) {
    const bool has_p = p != p_end, has_v = snap_versions && v != v_end;
    if (has_p && has_v && p->first == v->first) {
      if (p->second != v->second)
        return p->first;
      ++p;
      ++v;
    } else if (has_p && (!has_v || p->first < v->first)) {
      return p->first;
    } else {
      return v->first;
    }
  }
  return std::nullopt;
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
  // Hours a refresh rewrote since the part was read (a late range): from the first of them on
  // the part is rebuilt from the snapshot's rows when it holds them (late data of the last
  // hour or so, the usual case), else read again.
  const auto changed =
      first_changed_hour(*part, versions, floor_to(start, hour_us), std::min(part->hi, split));
  if (!changed && part->hi >= split)
    return part;
  const auto cut = changed ? *changed : part->hi;
  if (step != five_min_us || cut < snap.household_lo) {
    if (changed)  // read again; that part replaces this one (see keep_settled)
      store.drop(key, part);
    return nullptr;
  }
  auto next = std::make_shared<cache::series_part>();
  // Only what a window ending here can still ask for: the versions were checked from there.
  next->lo = start;
  next->hi = split;
  auto kept = part->slice(next->lo, cut);
  next->text.assign(kept.data(), kept.size());
  const auto base = kept.empty() ? 0 : static_cast<std::size_t>(kept.data() - part->text.data());
  for (auto& [t, at] : part->elements)
    if (t >= next->lo && t < cut)
      next->elements.emplace_back(t, at - base);
  energy_points added;
  if (auto it = snap.household_5m.find(household); it != snap.household_5m.end())
    for (auto& b : it->second)
      if (b.start >= cut && b.start < split)
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
