#pragma once
// The analytics read queries: real-time aggregation over rollup tiers plus the raw tail.
// Returns typed results; rendering to JSON lives in http/.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/analytics.hpp"

namespace joule::db {

class session;

/// How the answer is computed: rollups + raw tail (normal) or raw rows only (baseline).
enum class read_mode { rollups, raw };

// The query and result types are part of the actor contract (core/analytics.hpp).
using joule::answer_meta;
using joule::device_energy;
using joule::point;
using joule::series_kind;
using joule::series_query;
using joule::series_result;
using joule::top_query;
using joule::top_result;

class watermark_board;

/// With `known` watermarks (all those the query needs) an answer takes one round trip;
/// otherwise the watermarks are read first (and `known` is raised with them).
series_result household_energy(session& s, const series_query& q, read_mode mode,
                               watermark_board* known = nullptr);
series_result device_power(session& s, const series_query& q, read_mode mode,
                           watermark_board* known = nullptr);
top_result top_devices(session& s, const top_query& q, read_mode mode,
                       watermark_board* known = nullptr);

} // namespace joule::db
