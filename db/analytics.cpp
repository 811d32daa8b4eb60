#include "db/analytics.hpp"

#include <algorithm>

#include <pqxx/pqxx>

#include "actors/timefmt.hpp"
#include "db/session.hpp"

namespace joule::db {
namespace {

constexpr std::int64_t minute = 60 * micros_per_second;
constexpr std::int64_t hour = 60 * minute;

std::string ts(std::int64_t t) { return format_rfc3339(t); }

std::string interval_sql(std::int64_t step) {
  return std::to_string(step / micros_per_second) + " seconds";
}

// One source of rows for a series: a rollup table over [lo, hi), or raw rows when table is
// empty. Tiers are contiguous and ordered: coarse rollups first, the raw tail last.
struct tier {
  std::string rollup;  // rollup_state name, empty for raw
  std::string table;
  std::int64_t lo = 0;
  std::int64_t hi = 0;
};

// Reads now() and the watermarks in one round trip.
struct snapshot {
  std::int64_t now = 0;
  std::optional<std::int64_t> wm_device_1m, wm_household_5m, wm_device_1h;
};

snapshot read_snapshot(pqxx::nontransaction& q) {
  auto r = q.exec(
      "SELECT (extract(epoch from now()) * 1000000)::bigint, name, "
      "(extract(epoch from watermark) * 1000000)::bigint FROM rollup_state");
  snapshot s;
  for (auto row : r) {
    s.now = row[0].as<std::int64_t>();
    std::optional<std::int64_t> wm;
    if (!row[2].is_null())
      wm = row[2].as<std::int64_t>();
    auto name = row[1].as<std::string>();
    if (name == "device_1m")
      s.wm_device_1m = wm;
    else if (name == "household_5m")
      s.wm_household_5m = wm;
    else if (name == "device_1h")
      s.wm_device_1h = wm;
  }
  if (r.empty())
    s.now = q.exec("SELECT (extract(epoch from now()) * 1000000)::bigint")[0][0].as<std::int64_t>();
  return s;
}

// Splits [start, end) at the watermarks of the given rollups (coarsest first).
std::vector<tier> plan_tiers(std::int64_t start, std::int64_t end,
                             const std::vector<std::pair<std::string, std::optional<std::int64_t>>>& levels,
                             const std::vector<std::string>& tables) {
  std::vector<tier> out;
  std::int64_t cur = start;
  for (size_t i = 0; i < levels.size(); ++i) {
    std::int64_t wm = levels[i].second.value_or(INT64_MIN);
    std::int64_t hi = std::clamp(wm, cur, end);
    if (hi > cur)
      out.push_back({levels[i].first, tables[i], cur, hi});
    cur = std::max(cur, hi);
  }
  if (end > cur)
    out.push_back({"", "", cur, end});
  return out;
}

// fresh_as_of: now, unless a late write inside a materialised tier is not reflected yet; then
// the time that write was logged (everything committed before it is reflected).
answer_meta meta_for(pqxx::nontransaction& q, const snapshot& snap, const std::vector<tier>& tiers,
                     bool found) {
  answer_meta m;
  m.found = found;
  m.fresh_as_of = snap.now;
  m.live = tiers.empty() || tiers.back().rollup.empty();
  for (auto& t : tiers) {
    if (t.rollup.empty())
      continue;
    auto r = q.exec_params(
        "SELECT (extract(epoch from min(logged_at)) * 1000000)::bigint FROM rollup_invalidations "
        "WHERE rollup = $1 AND lo < $3 AND hi >= $2",
        t.rollup, ts(t.lo), ts(t.hi));
    if (!r[0][0].is_null())
      m.fresh_as_of = std::min(m.fresh_as_of, r[0][0].as<std::int64_t>());
  }
  return m;
}

bool exists(pqxx::nontransaction& q, const char* sql, const std::string& id) {
  return !q.exec_params(sql, id).empty();
}

// Builds the union over tiers. Each branch yields (t, e, ps, pc, pm); params: $1 = key,
// then lo/hi pairs per tier.
std::string union_sql(const std::vector<tier>& tiers, const std::string& key_col,
                      bool has_max_everywhere) {
  std::string sql;
  int p = 2;
  for (auto& t : tiers) {
    if (!sql.empty())
      sql += " UNION ALL ";
    auto lo = "$" + std::to_string(p++) + "::timestamptz";
    auto hi = "$" + std::to_string(p++) + "::timestamptz";
    if (t.table.empty()) {
      sql += "SELECT ts AS t, energy_wh AS e, power_w AS ps, (power_w IS NOT NULL)::int AS pc, "
             "power_w AS pm FROM telemetry WHERE " + key_col + " = $1::uuid AND ts >= " + lo +
             " AND ts < " + hi;
    } else {
      sql += std::string("SELECT bucket AS t, energy_wh_sum AS e, power_w_sum AS ps, "
                         "power_w_count AS pc, ") +
             (has_max_everywhere ? "power_w_max" : "NULL::double precision") + " AS pm FROM " +
             t.table + " WHERE " + key_col + " = $1::uuid AND bucket >= " + lo +
             " AND bucket < " + hi;
    }
  }
  return sql;
}

std::vector<std::string> tier_params(const std::vector<tier>& tiers) {
  std::vector<std::string> out;
  for (auto& t : tiers) {
    out.push_back(ts(t.lo));
    out.push_back(ts(t.hi));
  }
  return out;
}

// libpqxx 6 binds a fixed argument list; tiers have at most 3 entries, so expand by count.
pqxx::result exec_tiers(pqxx::nontransaction& q, const std::string& sql, const std::string& key,
                        const std::vector<std::string>& p, const std::string& extra = {}) {
  bool has_extra = !extra.empty();
  switch (p.size()) {
    case 2:
      return has_extra ? q.exec_params(sql, key, p[0], p[1], extra) : q.exec_params(sql, key, p[0], p[1]);
    case 4:
      return has_extra ? q.exec_params(sql, key, p[0], p[1], p[2], p[3], extra)
                       : q.exec_params(sql, key, p[0], p[1], p[2], p[3]);
    case 6:
      return has_extra ? q.exec_params(sql, key, p[0], p[1], p[2], p[3], p[4], p[5], extra)
                       : q.exec_params(sql, key, p[0], p[1], p[2], p[3], p[4], p[5]);
    default:
      throw std::logic_error("unexpected tier count");
  }
}

series_result run_series(pqxx::nontransaction& q, const snapshot& snap,
                         const std::vector<tier>& tiers, const std::string& key_col,
                         const std::string& id, std::int64_t step, bool has_max, bool found) {
  series_result res;
  res.meta = meta_for(q, snap, tiers, found);
  if (tiers.empty())
    return res;
  std::string sql = "SELECT (extract(epoch from date_bin('" + interval_sql(step) +
                    "', t, '2000-01-01 00:00:00+00')) * 1000000)::bigint AS b, sum(e), "
                    "sum(ps) / NULLIF(sum(pc), 0), max(pm) FROM (" +
                    union_sql(tiers, key_col, has_max) + ") x GROUP BY 1 ORDER BY 1";
  for (auto row : exec_tiers(q, sql, id, tier_params(tiers))) {
    point pt;
    pt.t = row[0].as<std::int64_t>();
    res.series.push_back(pt);
    auto& back = res.series.back();
    if (key_col == "household_id") {
      if (!row[1].is_null())
        back.v = row[1].as<double>();
    } else {
      if (!row[2].is_null())
        back.v = row[2].as<double>();
      if (!row[3].is_null())
        back.max = row[3].as<double>();
    }
  }
  return res;
}

} // namespace

series_result household_energy(session& s, const series_query& qry, read_mode mode) {
  pqxx::nontransaction q{s.conn()};
  bool found = exists(q, "SELECT 1 FROM devices WHERE household_id = $1::uuid LIMIT 1", qry.id);
  if (!found)
    return {};
  auto snap = read_snapshot(q);
  std::vector<tier> tiers;
  if (mode == read_mode::raw)
    tiers = plan_tiers(qry.start, qry.end, {}, {});
  else
    tiers = plan_tiers(qry.start, qry.end, {{"household_5m", snap.wm_household_5m}},
                       {"rollup_household_5m"});
  return run_series(q, snap, tiers, "household_id", qry.id, qry.step, false, true);
}

series_result device_power(session& s, const series_query& qry, read_mode mode) {
  pqxx::nontransaction q{s.conn()};
  bool found = exists(q, "SELECT 1 FROM devices WHERE id = $1::uuid", qry.id);
  if (!found)
    return {};
  auto snap = read_snapshot(q);
  std::vector<tier> tiers;
  if (mode == read_mode::raw)
    tiers = plan_tiers(qry.start, qry.end, {}, {});
  else if (qry.step % hour == 0)
    tiers = plan_tiers(qry.start, qry.end,
                       {{"device_1h", snap.wm_device_1h}, {"device_1m", snap.wm_device_1m}},
                       {"rollup_device_1h", "rollup_device_1m"});
  else
    tiers = plan_tiers(qry.start, qry.end, {{"device_1m", snap.wm_device_1m}},
                       {"rollup_device_1m"});
  return run_series(q, snap, tiers, "device_id", qry.id, qry.step, true, true);
}

top_result top_devices(session& s, const top_query& qry, read_mode mode) {
  pqxx::nontransaction q{s.conn()};
  top_result res;
  bool found =
      exists(q, "SELECT 1 FROM devices WHERE household_id = $1::uuid LIMIT 1", qry.household_id);
  if (!found)
    return res;
  auto snap = read_snapshot(q);
  std::vector<tier> tiers;
  if (mode == read_mode::raw)
    tiers = plan_tiers(qry.start, qry.end, {}, {});
  else
    tiers = plan_tiers(qry.start, qry.end,
                       {{"device_1h", snap.wm_device_1h}, {"device_1m", snap.wm_device_1m}},
                       {"rollup_device_1h", "rollup_device_1m"});
  res.meta = meta_for(q, snap, tiers, true);
  // Devices are the household's registered devices (as in the design document).
  std::string sql;
  int p = 2;
  for (auto& t : tiers) {
    if (!sql.empty())
      sql += " UNION ALL ";
    auto lo = "$" + std::to_string(p++) + "::timestamptz";
    auto hi = "$" + std::to_string(p++) + "::timestamptz";
    if (t.table.empty())
      sql += "SELECT device_id, energy_wh AS e FROM telemetry WHERE household_id = $1::uuid AND "
             "device_id IN (SELECT id FROM hd) AND ts >= " + lo + " AND ts < " + hi;
    else
      sql += "SELECT device_id, energy_wh_sum AS e FROM " + t.table +
             " WHERE device_id IN (SELECT id FROM hd) AND bucket >= " + lo + " AND bucket < " + hi;
  }
  sql = "WITH hd AS (SELECT id FROM devices WHERE household_id = $1::uuid) "
        "SELECT device_id::text, sum(e) AS total FROM (" + sql +
        ") x GROUP BY 1 HAVING sum(e) IS NOT NULL ORDER BY 2 DESC, 1 LIMIT $" + std::to_string(p) +
        "::int";
  for (auto row : exec_tiers(q, sql, qry.household_id, tier_params(tiers), std::to_string(qry.limit)))
    res.devices.push_back({row[0].as<std::string>(), row[1].as<double>()});
  return res;
}

} // namespace joule::db
