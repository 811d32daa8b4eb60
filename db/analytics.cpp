#include "db/analytics.hpp"

#include <algorithm>
#include <functional>

#include <pqxx/pqxx>

#include "core/timefmt.hpp"
#include "db/rollups.hpp"
#include "db/session.hpp"
#include "db/watermarks.hpp"

namespace joule::db {
namespace {

constexpr std::int64_t minute = 60 * micros_per_second;
constexpr std::int64_t hour = 60 * minute;

std::string ts(std::int64_t t) { return format_rfc3339(t); }
std::string us(const std::string& expr) {
  return "(extract(epoch from " + expr + ") * 1000000)::bigint";
}

// Statements are prepared once per connection, keyed by their text: the text depends only on
// the shape of the request (step, which tiers), never on user input, so there are few of them.
pqxx::result exec_cached(session& s, pqxx::transaction_base& q, const std::string& sql,
                         const std::vector<std::string>& params) {
  auto name = "a" + std::to_string(std::hash<std::string>{}(sql));
  s.prepare(name, sql);
  return q.exec_prepared(name, pqxx::prepare::make_dynamic_params(params));
}

// One source of rows: a rollup table over [lo, hi), or raw rows when table is empty. Tiers are
// contiguous and ordered: coarse rollups first, the raw tail last.
struct tier {
  std::string rollup;  // rollup_state name, empty for raw
  std::string table;
  std::int64_t lo = 0;
  std::int64_t hi = 0;
};

// Whether the subject exists, the database clock and every watermark, in one round trip.
struct snapshot {
  bool found = false;
  std::int64_t now = 0;
  std::optional<std::int64_t> wm_device_1m, wm_household_5m, wm_device_1h;
};

// The watermarks from the board, if it knows all of `needed`; found/now then come with the
// answer itself (one round trip).
std::optional<snapshot> known_snapshot(watermark_board* known,
                                       std::initializer_list<const char*> needed) {
  if (!known)
    return std::nullopt;
  for (auto* n : needed)
    if (!known->get(n))
      return std::nullopt;
  snapshot snap;
  snap.wm_device_1m = known->get("device_1m");
  snap.wm_household_5m = known->get("household_5m");
  snap.wm_device_1h = known->get("device_1h");
  return snap;
}

// '{a,b}' for `$n::uuid[]` (validated UUIDs: no quoting needed).
std::string uuid_array(const std::vector<std::string>& ids) {
  std::string out = "{";
  for (size_t i = 0; i < ids.size(); ++i)
    out += (i ? "," : "") + ids[i];
  return out + "}";
}

// `EXISTS (...)` for the subject of a query: `exists_column = $1`, and when the caller is
// restricted to some households, also inside them (parameter `households_param`).
std::string exists_sql(const char* exists_column, const std::string& households_param) {
  auto sql = std::string("EXISTS (SELECT 1 FROM devices WHERE ") + exists_column + " = $1::uuid";
  if (!households_param.empty())
    sql += " AND household_id = ANY(" + households_param + "::uuid[])";
  return sql + ")";
}

snapshot read_snapshot(session& s, pqxx::transaction_base& q, const char* exists_column,
                       const std::string& id, watermark_board* known,
                       const std::vector<std::string>& households = {}) {
  auto wm = [](const char* name) {
    return "(SELECT " + us("watermark") + " FROM rollup_state WHERE name = '" + name + "')";
  };
  auto sql = "SELECT " + exists_sql(exists_column, households.empty() ? "" : "$2") + ", " +
             us("now()") + ", " + wm("device_1m") + ", " + wm("household_5m") + ", " +
             wm("device_1h");
  std::vector<std::string> params{id};
  if (!households.empty())
    params.push_back(uuid_array(households));
  auto r = exec_cached(s, q, sql, params);
  snapshot snap;
  snap.found = r[0][0].as<bool>();
  snap.now = r[0][1].as<std::int64_t>();
  auto opt = [&](int col) -> std::optional<std::int64_t> {
    if (r[0][col].is_null())
      return std::nullopt;
    return r[0][col].as<std::int64_t>();
  };
  snap.wm_device_1m = opt(2);
  snap.wm_household_5m = opt(3);
  snap.wm_device_1h = opt(4);
  if (known) {
    if (snap.wm_device_1m)
      known->raise("device_1m", *snap.wm_device_1m);
    if (snap.wm_household_5m)
      known->raise("household_5m", *snap.wm_household_5m);
    if (snap.wm_device_1h)
      known->raise("device_1h", *snap.wm_device_1h);
  }
  return snap;
}

// Either the board's watermarks (one round trip: found/now come with the answer) or a
// snapshot read first.
snapshot take_snapshot(session& s, pqxx::transaction_base& q, const char* exists_column,
                       const std::string& id, watermark_board* known,
                       std::initializer_list<const char*> needed, bool& one_trip,
                       const std::vector<std::string>& households = {}) {
  if (auto snap = known_snapshot(known, needed)) {
    one_trip = true;
    return *snap;
  }
  one_trip = false;
  return read_snapshot(s, q, exists_column, id, known, households);
}

// One rollup a query may read, and its watermark (nullopt: never refreshed).
struct level {
  const rollup_spec* spec;
  std::optional<std::int64_t> watermark;
};

// The rollups a query may read, coarsest first, with their watermarks; none for raw reads.
using named_watermark = std::pair<const char*, std::optional<std::int64_t>>;
std::vector<level> levels_for(read_mode mode, std::initializer_list<named_watermark> ls) {
  std::vector<level> out;
  if (mode == read_mode::rollups)
    for (auto& [name, wm] : ls)
      out.push_back({find_rollup(name), wm});
  return out;
}

// Splits [start, end) at the watermarks of the given rollups (coarsest first), so that every
// answer bucket [t, t + step) is the sum of whole rollup buckets and raw rows, and the answer
// is the same GROUP BY over raw rows whatever the watermarks are. That needs every tier bound
// on the rollup's own bucket grid: start and end are aligned to the step (the caller's rule;
// aligned again here), a rollup is used only if its width divides the step, and each watermark
// is floored to its width (refreshes only ever write aligned ones; flooring keeps a hand-set
// value from counting the rollup bucket that straddles it twice, since rows at or above it
// come from the next tier). Each width must divide the previous one (1 h before 1 m).
std::vector<tier> plan_tiers(std::int64_t start, std::int64_t end, std::int64_t step,
                             const std::vector<level>& levels) {
  std::vector<tier> out;
  start = floor_to(start, step);
  end = ceil_to(end, step);
  std::int64_t cur = start;
  for (auto& l : levels) {
    if (!l.spec || step % l.spec->width != 0 || !l.watermark)
      continue;
    std::int64_t hi = std::clamp(floor_to(*l.watermark, l.spec->width), cur, end);
    if (hi > cur)
      out.push_back({l.spec->name, l.spec->table, cur, hi});
    cur = std::max(cur, hi);
  }
  if (end > cur)
    out.push_back({"", "", cur, end});
  return out;
}

// Parameters: $1 = key, then lo/hi per tier. Returns the placeholders of tier i.
std::pair<std::string, std::string> bounds(size_t i) {
  return {"$" + std::to_string(2 + 2 * i) + "::timestamptz",
          "$" + std::to_string(3 + 2 * i) + "::timestamptz"};
}

std::vector<std::string> params_for(const std::string& key, const std::vector<tier>& tiers) {
  std::vector<std::string> out{key};
  for (auto& t : tiers) {
    out.push_back(ts(t.lo));
    out.push_back(ts(t.hi));
  }
  return out;
}

// A one-row CTE `meta(f)`: the log time of the oldest late write inside a materialised tier
// that no refresh has reflected yet (NULL: none). Everything committed before it is reflected.
std::string meta_cte(const std::vector<tier>& tiers, const char* exists_column,
                     const std::string& households_param = {}) {
  auto extra = std::string(", ") + us("now()") + " AS n, " +
               exists_sql(exists_column, households_param) + " AS found";
  std::string cond;
  for (size_t i = 0; i < tiers.size(); ++i) {
    if (tiers[i].rollup.empty())
      continue;
    auto [lo, hi] = bounds(i);
    cond += std::string(cond.empty() ? "" : " OR ") + "(rollup = '" + tiers[i].rollup +
            "' AND lo < " + hi + " AND hi >= " + lo + ")";
  }
  if (cond.empty())
    return "meta AS (SELECT NULL::bigint AS f" + extra + ")";
  return "meta AS (SELECT (SELECT " + us("min(logged_at)") +
         " FROM rollup_invalidations WHERE " + cond + ") AS f" + extra + ")";
}

// Raw rows of one household or device. A device's rows are found through the
// (household_id, ts) index of its registered household: the (ts, device_id) index would scan
// every device's rows in the time range (10 ms vs 0.9 ms for a 2-minute tail of the standard
// fleet). This assumes a device's rows carry its registered household, which POST /telemetry
// enforces and SQL writers are expected to keep.
std::string raw_key_filter(const std::string& key_col) {
  if (key_col == "device_id")
    return "household_id = (SELECT household_id FROM devices WHERE id = $1::uuid) AND "
           "device_id = $1::uuid";
  return key_col + " = $1::uuid";
}

// The union over tiers; each branch yields (t, e, ps, pc, pm).
std::string union_sql(const std::vector<tier>& tiers, const std::string& key_col, bool has_max) {
  std::string sql;
  for (size_t i = 0; i < tiers.size(); ++i) {
    auto& t = tiers[i];
    auto [lo, hi] = bounds(i);
    if (!sql.empty())
      sql += " UNION ALL ";
    if (t.table.empty())
      sql += "SELECT ts AS t, energy_wh AS e, power_w AS ps, (power_w IS NOT NULL)::int AS pc, "
             "power_w AS pm FROM telemetry WHERE " + raw_key_filter(key_col) + " AND ts >= " +
             lo + " AND ts < " + hi;
    else
      sql += std::string("SELECT bucket AS t, energy_wh_sum AS e, power_w_sum AS ps, "
                         "power_w_count AS pc, ") +
             (has_max ? "power_w_max" : "NULL::double precision") + " AS pm FROM " + t.table +
             " WHERE " + key_col + " = $1::uuid AND bucket >= " + lo + " AND bucket < " + hi;
  }
  return sql;
}

// Columns of the meta row: f (0), ..., n and found at `ncol`, `ncol + 1`.
answer_meta finish_meta(const snapshot& snap, const std::vector<tier>& tiers,
                        const pqxx::result& r, int ncol) {
  answer_meta m;
  m.found = r.empty() ? snap.found : r[0][ncol + 1].as<bool>();
  auto now = r.empty() ? snap.now : r[0][ncol].as<std::int64_t>();
  m.fresh_as_of = now;
  if (!r.empty() && !r[0][0].is_null())
    m.fresh_as_of = std::min(now, r[0][0].as<std::int64_t>());
  m.live = tiers.empty() || tiers.back().rollup.empty();
  return m;
}

series_result run_series(session& s, pqxx::transaction_base& q, const snapshot& snap,
                         const std::vector<tier>& tiers, const std::string& key_col,
                         const char* exists_column, const std::string& id, std::int64_t step,
                         bool power, const std::vector<std::string>& households = {}) {
  series_result res;
  // The households parameter follows the tiers' bounds.
  auto params = params_for(id, tiers);
  std::string households_param;
  if (!households.empty()) {
    params.push_back(uuid_array(households));
    households_param = "$" + std::to_string(params.size());
  }
  auto sql = "WITH " + meta_cte(tiers, exists_column, households_param) +
             " SELECT meta.f, s.b, s.e, s.p, s.m, meta.n, meta.found FROM meta LEFT JOIN "
             "(SELECT " + us("date_bin('" + std::to_string(step / micros_per_second) +
                             " seconds', t, '2000-01-01 00:00:00+00')") +
             " AS b, sum(e) AS e, sum(ps) / NULLIF(sum(pc), 0) AS p, max(pm) AS m FROM (" +
             union_sql(tiers, key_col, power) + ") x GROUP BY 1) s ON true ORDER BY s.b";
  auto r = exec_cached(s, q, sql, params);
  res.meta = finish_meta(snap, tiers, r, 5);
  if (!res.meta.found)
    return {};
  for (auto row : r) {
    if (row[1].is_null())
      continue;  // no buckets: the meta row only
    point pt;
    pt.t = row[1].as<std::int64_t>();
    int vcol = power ? 3 : 2;
    if (!row[vcol].is_null())
      pt.v = row[vcol].as<double>();
    if (power && !row[4].is_null())
      pt.max = row[4].as<double>();
    res.series.push_back(pt);
  }
  return res;
}

} // namespace

series_result household_energy(session& s, const series_query& qry, read_mode mode,
                               watermark_board* known) {
  pqxx::nontransaction q{s.conn()};
  bool one_trip = false;
  auto snap = take_snapshot(s, q, "household_id", qry.id, known, {"household_5m"}, one_trip);
  if (!one_trip && !snap.found)
    return {};
  auto tiers = plan_tiers(qry.start, qry.end, qry.step,
                          levels_for(mode, {{"household_5m", snap.wm_household_5m}}));
  return run_series(s, q, snap, tiers, "household_id", "household_id", qry.id, qry.step, false);
}

series_result device_power(session& s, const series_query& qry, read_mode mode,
                           watermark_board* known) {
  pqxx::nontransaction q{s.conn()};
  bool one_trip = false;
  auto snap = take_snapshot(s, q, "id", qry.id, known, {"device_1m", "device_1h"}, one_trip,
                            qry.households);
  if (!one_trip && !snap.found)
    return {};
  // Hourly steps read the 1 h rollup first (plan_tiers skips it for finer steps), then 1 m.
  auto tiers = plan_tiers(
      qry.start, qry.end, qry.step,
      levels_for(mode, {{"device_1h", snap.wm_device_1h}, {"device_1m", snap.wm_device_1m}}));
  return run_series(s, q, snap, tiers, "device_id", "id", qry.id, qry.step, true,
                    qry.households);
}

top_result top_devices(session& s, const top_query& qry, read_mode mode,
                       watermark_board* known) {
  pqxx::nontransaction q{s.conn()};
  top_result res;
  bool one_trip = false;
  auto snap = take_snapshot(s, q, "household_id", qry.household_id, known,
                            {"device_1m", "device_1h"}, one_trip);
  if (!one_trip && !snap.found)
    return res;
  // The window is whole hours (the router's rule, re-applied here): planned with an hourly
  // step, so both rollups qualify and every tier bound is on their grids.
  auto tiers = plan_tiers(
      qry.start, qry.end, hour,
      levels_for(mode, {{"device_1h", snap.wm_device_1h}, {"device_1m", snap.wm_device_1m}}));
  // Devices are the household's registered devices (as in the design document).
  std::string branches;
  for (size_t i = 0; i < tiers.size(); ++i) {
    auto& t = tiers[i];
    auto [lo, hi] = bounds(i);
    if (!branches.empty())
      branches += " UNION ALL ";
    if (t.table.empty())
      branches += "SELECT device_id, energy_wh AS e FROM telemetry WHERE household_id = $1::uuid "
                  "AND device_id IN (SELECT id FROM hd) AND ts >= " + lo + " AND ts < " + hi;
    else
      branches += "SELECT device_id, energy_wh_sum AS e FROM " + t.table +
                  " WHERE device_id IN (SELECT id FROM hd) AND bucket >= " + lo +
                  " AND bucket < " + hi;
  }
  auto limit = "$" + std::to_string(2 + 2 * tiers.size()) + "::int";
  auto sql = "WITH hd AS (SELECT id FROM devices WHERE household_id = $1::uuid), " +
             meta_cte(tiers, "household_id") +
             " SELECT meta.f, s.d, s.total, meta.n, meta.found FROM meta LEFT JOIN (SELECT "
             "device_id::text AS d, sum(e) AS total FROM (" + branches +
             ") x GROUP BY 1 HAVING sum(e) IS NOT NULL ORDER BY 2 DESC, 1 LIMIT " + limit +
             ") s ON true ORDER BY s.total DESC, s.d";
  auto params = params_for(qry.household_id, tiers);
  params.push_back(std::to_string(qry.limit));
  auto r = exec_cached(s, q, sql, params);
  res.meta = finish_meta(snap, tiers, r, 3);
  if (!res.meta.found)
    return {};
  for (auto row : r)
    if (!row[1].is_null())
      res.devices.push_back({row[1].as<std::string>(), row[2].as<double>()});
  return res;
}

} // namespace joule::db
