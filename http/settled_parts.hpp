#pragma once
// Settled parts of household energy answers held per household and step (issue 9): found,
// checked against a live snapshot's versions, and extended from its rollup rows as the
// household 5 min watermark moves — so neither a sliding default window nor a refresh sends a
// poll back to PostgreSQL. The join with the live part stays in http/analytics_routes.cpp.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cache/settled_series.hpp"
#include "db/live_tail.hpp"

namespace joule::http {

using energy_points = std::vector<std::pair<std::int64_t, std::optional<double>>>;

/// The store key of a household's settled energy series at `step` (µs).
std::string settled_series_key(const std::string& household, std::int64_t step);

/// The part of `store` under `key` usable for the settled buckets [start, split) with `snap`:
/// as held when it already reaches `split` and the snapshot names the same versions for the
/// hours it spans; extended by the snapshot's household 5 min rollup rows (and stored) when
/// the watermark has passed new buckets since and the step is 5 min (one row per bucket: the
/// element is exactly what PostgreSQL would sum). Null when the part must be read.
std::shared_ptr<const cache::series_part> settled_from_memory(cache::settled_series& store,
                                                              const std::string& key,
                                                              const db::live_snapshot& snap,
                                                              const std::string& household,
                                                              std::int64_t step,
                                                              std::int64_t start,
                                                              std::int64_t split);

/// Stores a part read from PostgreSQL or Redis, unless the one held reaches further: a look at
/// an older window must not push out the part the household's dashboards extend.
void keep_settled(cache::settled_series& store, const std::string& key,
                  std::shared_ptr<const cache::series_part> part);

/// A part over [lo, hi) from `points` read at `versions` ("hour:version,..."); null when the
/// version text is malformed.
std::shared_ptr<const cache::series_part> settled_from_points(std::int64_t lo, std::int64_t hi,
                                                              const std::string& versions,
                                                              const energy_points& points);

} // namespace joule::http
