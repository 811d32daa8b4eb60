#include "db/analytics.hpp"

#include <algorithm>
#include <functional>
#include <map>
#include <sstream>

#include <pqxx/pqxx>

#include "core/timefmt.hpp"
#include "db/ranges.hpp"
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
//
// Generic plans: with custom plans PostgreSQL plans an analytics statement again on every
// execution (about 0.4 ms, as much as running it), because the generic plan's estimate counts
// every telemetry partition; at execution the generic plan prunes them all the same (initial
// pruning on the bound parameters). Only this connection's named statements are affected.
pqxx::result exec_cached(session& s, pqxx::transaction_base& q, const std::string& sql,
                         const std::vector<std::string>& params) {
  if (s.first_time("analytics_generic_plans"))
    q.exec("SET plan_cache_mode = force_generic_plan");
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

// Late writes: the log rows of a rollup below its watermark that no refresh has consumed yet
// (not kept) name buckets whose materialised rows are stale. Reads serve those buckets from
// the next finer exact source instead (patch_tiers), for the keys the writes touched: a log
// row of a late write lists its households (0008_late_reads.sql; NULL: any household).
// `key_household` is the SQL expression of the subject's household.
std::string relevant_sql(const std::string& key_household) {
  return "(households IS NULL OR " + key_household + " = ANY(households))";
}

// A log bound as µs; writers may store any timestamptz (even 'infinity'), clamped as in the
// refresh.
std::string clamped_us(const std::string& col) {
  return us("least(greatest(" + col + ", timestamptz '1000-01-01 00:00:00+00'), "
            "timestamptz '3000-01-01 00:00:00+00')");
}

// Where a query may find pending late ranges: per rollup it may read (tier or finer source),
// [first tier's start, `hi`) with hi = its floored watermark (above it rows are read raw).
struct pending_scope {
  std::string rollup;
  std::int64_t hi = 0;
};

// A one-row CTE `meta(f, p, n, found)`. f: the log time of the oldest write inside a
// materialised tier that no refresh has reflected yet (NULL: none); everything committed
// before it is reflected. p: the late ranges of the scopes, "rollup lo hi kept" (µs, hi
// inclusive) joined by ',' (NULL: none), for the caller to patch around; `p_param` is the
// first parameter of the scopes' bounds.
std::string meta_cte(const std::vector<tier>& tiers, const char* exists_column,
                     const std::string& key_household, const std::vector<pending_scope>& scopes,
                     size_t p_param, const std::string& households_param = {}) {
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
  std::string pcond;
  for (size_t i = 0; i < scopes.size(); ++i)
    pcond += std::string(pcond.empty() ? "" : " OR ") + "(rollup = '" + scopes[i].rollup +
             "' AND lo < $" + std::to_string(p_param + i) + "::timestamptz AND hi >= $2::timestamptz)";
  auto f = cond.empty() ? std::string("NULL::bigint")
                        : "(SELECT " + us("min(logged_at)") +
                              " FROM rollup_invalidations WHERE (" + cond + ") AND " +
                              relevant_sql(key_household) + ")";
  auto p = pcond.empty() ? std::string("NULL::text")
                         : "(SELECT string_agg(rollup || ' ' || " + clamped_us("lo") +
                               " || ' ' || " + clamped_us("hi") +
                               " || ' ' || kept::int, ',') FROM rollup_invalidations WHERE (" + pcond +
                               ") AND " + relevant_sql(key_household) + ")";
  return "meta AS (SELECT " + f + " AS f, " + p + " AS p" + extra + ")";
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

// Late ranges by rollup, widened to the rollup's buckets, from "rollup lo hi kept,...":
// `pending` the ones no cycle has looked at yet (served around), `stale` those and the ones
// kept for a manual refresh (where a rollup is not exact, so not a finer source either).
using range_map = std::map<std::string, range_set>;
struct late_ranges {
  range_map pending;
  range_map stale;
};

late_ranges parse_late(const std::string& text) {
  late_ranges out;
  std::istringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    std::istringstream f(item);
    std::string name;
    std::int64_t lo = 0, hi = 0;
    int kept = 0;
    if (!(f >> name >> lo >> hi >> kept))
      continue;
    if (auto* spec = find_rollup(name)) {
      auto r = widen_inclusive(lo, hi, spec->width);
      out.stale[name].push_back(r);
      if (!kept)
        out.pending[name].push_back(r);
    }
  }
  for (auto* m : {&out.pending, &out.stale})
    for (auto& [name, rs] : *m)
      rs = normalize(std::move(rs));
  return out;
}

// The bound up to which a level may serve rows: its watermark floored to its width, clamped to
// [start, end); nullopt if it cannot serve this step.
std::optional<std::int64_t> level_hi(const level& l, std::int64_t start, std::int64_t end,
                                     std::int64_t step) {
  if (!l.spec || step % l.spec->width != 0 || !l.watermark)
    return std::nullopt;
  return std::clamp(floor_to(*l.watermark, l.spec->width), start, end);
}

std::vector<pending_scope> scopes_for(const std::vector<level>& levels, std::int64_t start,
                                      std::int64_t end, std::int64_t step) {
  std::vector<pending_scope> out;
  start = floor_to(start, step);
  end = ceil_to(end, step);
  for (auto& l : levels)
    if (auto hi = level_hi(l, start, end, step); hi && *hi > start)
      out.push_back({l.spec->name, *hi});
  return out;
}

// At most this many patches per tier: beyond it they are served as one raw range from the
// first to the last (more raw rows, but a bounded statement).
constexpr size_t max_patches = 8;

// The tiers with every pending late range of a rollup tier cut out and served from the next
// finer level where that level is exact (below its watermark, no late range of its own,
// pending or kept; it must have the same key, so only the device rollups qualify), else from
// raw rows. Every
// bound stays on the grid of the level it delimits: patches are whole buckets of the coarser
// rollup, the finer level's watermark and pending ranges are whole buckets of its own.
std::vector<tier> patch_tiers(const std::vector<tier>& tiers, const std::vector<level>& levels,
                              const late_ranges& late, std::int64_t step) {
  const auto& pending = late.pending;
  std::vector<tier> out;
  auto push = [&out](tier t) {
    if (t.hi <= t.lo)
      return;
    if (!out.empty() && out.back().table == t.table && out.back().hi == t.lo) {
      out.back().hi = t.hi;
      return;
    }
    out.push_back(std::move(t));
  };
  for (auto& t : tiers) {
    auto it = t.rollup.empty() ? pending.end() : pending.find(t.rollup);
    if (it == pending.end()) {
      push(t);
      continue;
    }
    auto patches = clip(it->second, t.lo, t.hi);
    if (patches.size() > max_patches)
      patches = {{patches.front().lo, patches.back().hi}};
    // The next finer level with the same key column.
    const level* finer = nullptr;
    for (size_t i = 0; i < levels.size(); ++i)
      if (levels[i].spec && levels[i].spec->name == t.rollup) {
        for (size_t j = i + 1; j < levels.size() && !finer; ++j)
          if (levels[j].spec && levels[j].watermark &&
              levels[j].spec->key_column == levels[i].spec->key_column &&
              step % levels[j].spec->width == 0)
            finer = &levels[j];
      }
    std::int64_t cur = t.lo;
    for (auto& p : patches) {
      push({t.rollup, t.table, cur, p.lo});
      range_set exact;
      if (finer) {
        exact = clip({p}, p.lo, std::min(p.hi, floor_to(*finer->watermark, finer->spec->width)));
        auto f = late.stale.find(finer->spec->name);
        if (f != late.stale.end())
          exact = subtract(exact, f->second);
      }
      std::int64_t at = p.lo;
      for (auto& e : exact) {
        push({"", "", at, e.lo});
        push({finer->spec->name, finer->spec->table, e.lo, e.hi});
        at = e.hi;
      }
      push({"", "", at, p.hi});
      cur = p.hi;
    }
    push({t.rollup, t.table, cur, t.hi});
  }
  return out;
}

// Columns of the meta row: f (0), ..., n, found and p at `ncol`, `ncol + 1`, `ncol + 2`.
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

late_ranges late_of(const pqxx::result& r, int ncol) {
  if (r.empty() || r[0][ncol + 2].is_null())
    return {};
  return parse_late(r[0][ncol + 2].as<std::string>());
}

// Runs a statement: the first plan of a request is prepared (few distinct texts), a patched
// plan is not (its shape depends on the late ranges, which would pile up prepared statements).
pqxx::result exec_plan(session& s, pqxx::transaction_base& q, const std::string& sql,
                       const std::vector<std::string>& params, bool patched) {
  if (!patched)
    return exec_cached(s, q, sql, params);
  return q.exec_params(sql, pqxx::prepare::make_dynamic_params(params));
}

struct series_run {
  series_result res;
  late_ranges late;
};

series_run run_series(session& s, pqxx::transaction_base& q, const snapshot& snap,
                      const std::vector<tier>& tiers, const std::vector<pending_scope>& scopes,
                      bool patched, const std::string& key_col, const char* exists_column,
                      const std::string& key_household, const std::string& id, std::int64_t step,
                      bool power, const std::vector<std::string>& households = {}) {
  series_run run;
  auto& res = run.res;
  // The households parameter follows the tiers' bounds, the scopes' bounds follow it.
  auto params = params_for(id, tiers);
  std::string households_param;
  if (!households.empty()) {
    params.push_back(uuid_array(households));
    households_param = "$" + std::to_string(params.size());
  }
  const size_t p_param = params.size() + 1;
  for (auto& sc : scopes)
    params.push_back(ts(sc.hi));
  auto sql = "WITH " + meta_cte(tiers, exists_column, key_household, scopes, p_param,
                                households_param) +
             " SELECT meta.f, s.b, s.e, s.p, s.m, meta.n, meta.found, meta.p FROM meta LEFT JOIN "
             "(SELECT " + us("date_bin('" + std::to_string(step / micros_per_second) +
                             " seconds', t, '2000-01-01 00:00:00+00')") +
             " AS b, sum(e) AS e, sum(ps) / NULLIF(sum(pc), 0) AS p, max(pm) AS m FROM (" +
             union_sql(tiers, key_col, power) + ") x GROUP BY 1) s ON true ORDER BY s.b";
  auto r = exec_plan(s, q, sql, params, patched);
  res.meta = finish_meta(snap, tiers, r, 5);
  run.late = late_of(r, 5);
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
  return run;
}

// True if a pending range touches a rollup tier of the plan (the answer read stale rows).
bool touches(const range_map& pending, const std::vector<tier>& tiers) {
  for (auto& t : tiers) {
    if (t.rollup.empty())
      continue;
    auto it = pending.find(t.rollup);
    if (it != pending.end() && !clip(it->second, t.lo, t.hi).empty())
      return true;
  }
  return false;
}

// The series of a request: planned at the watermarks; if late writes are pending inside a
// rollup tier, planned again around them and read once more (the second read's own meta says
// what it reflects, so a write landing in between only lowers fresh_as_of).
series_result series(session& s, pqxx::transaction_base& q, const snapshot& snap,
                     const series_query& qry, const std::vector<level>& levels,
                     const std::string& key_col, const char* exists_column,
                     const std::string& key_household, bool power,
                     const std::vector<std::string>& households = {}) {
  auto tiers = plan_tiers(qry.start, qry.end, qry.step, levels);
  auto scopes = scopes_for(levels, qry.start, qry.end, qry.step);
  auto first = run_series(s, q, snap, tiers, scopes, false, key_col, exists_column,
                          key_household, qry.id, qry.step, power, households);
  if (!first.res.meta.found || !touches(first.late.pending, tiers))
    return std::move(first.res);
  auto patched = patch_tiers(tiers, levels, first.late, qry.step);
  return run_series(s, q, snap, patched, {}, true, key_col, exists_column, key_household, qry.id,
                    qry.step, power, households)
      .res;
}

} // namespace

series_result household_energy(session& s, const series_query& qry, read_mode mode,
                               watermark_board* known) {
  pqxx::nontransaction q{s.conn()};
  bool one_trip = false;
  auto snap = take_snapshot(s, q, "household_id", qry.id, known, {"household_5m"}, one_trip);
  if (!one_trip && !snap.found)
    return {};
  return series(s, q, snap, qry, levels_for(mode, {{"household_5m", snap.wm_household_5m}}),
                "household_id", "household_id", "$1::uuid", false);
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
  return series(
      s, q, snap, qry,
      levels_for(mode, {{"device_1h", snap.wm_device_1h}, {"device_1m", snap.wm_device_1m}}),
      "device_id", "id", "(SELECT household_id FROM devices WHERE id = $1::uuid)", true,
      qry.households);
}

namespace {

struct top_run {
  top_result res;
  late_ranges late;
};

top_run run_top(session& s, pqxx::transaction_base& q, const snapshot& snap,
                const top_query& qry, const std::vector<tier>& tiers,
                const std::vector<pending_scope>& scopes, bool patched) {
  top_run run;
  auto& res = run.res;
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
  auto params = params_for(qry.household_id, tiers);
  params.push_back(std::to_string(qry.limit));
  auto limit = "$" + std::to_string(params.size()) + "::int";
  const size_t p_param = params.size() + 1;
  for (auto& sc : scopes)
    params.push_back(ts(sc.hi));
  auto sql = "WITH hd AS (SELECT id FROM devices WHERE household_id = $1::uuid), " +
             meta_cte(tiers, "household_id", "$1::uuid", scopes, p_param) +
             " SELECT meta.f, s.d, s.total, meta.n, meta.found, meta.p FROM meta LEFT JOIN "
             "(SELECT device_id::text AS d, sum(e) AS total FROM (" + branches +
             ") x GROUP BY 1 HAVING sum(e) IS NOT NULL ORDER BY 2 DESC, 1 LIMIT " + limit +
             ") s ON true ORDER BY s.total DESC, s.d";
  auto r = exec_plan(s, q, sql, params, patched);
  res.meta = finish_meta(snap, tiers, r, 3);
  run.late = late_of(r, 3);
  if (!res.meta.found)
    return {};
  for (auto row : r)
    if (!row[1].is_null())
      res.devices.push_back({row[1].as<std::string>(), row[2].as<double>()});
  return run;
}

} // namespace

top_result top_devices(session& s, const top_query& qry, read_mode mode,
                       watermark_board* known) {
  pqxx::nontransaction q{s.conn()};
  bool one_trip = false;
  auto snap = take_snapshot(s, q, "household_id", qry.household_id, known,
                            {"device_1m", "device_1h"}, one_trip);
  if (!one_trip && !snap.found)
    return {};
  // The window is whole hours (the router's rule, re-applied here): planned with an hourly
  // step, so both rollups qualify and every tier bound is on their grids.
  auto levels =
      levels_for(mode, {{"device_1h", snap.wm_device_1h}, {"device_1m", snap.wm_device_1m}});
  auto tiers = plan_tiers(qry.start, qry.end, hour, levels);
  auto first = run_top(s, q, snap, qry, tiers, scopes_for(levels, qry.start, qry.end, hour),
                       false);
  if (!first.res.meta.found || !touches(first.late.pending, tiers))
    return std::move(first.res);
  return run_top(s, q, snap, qry, patch_tiers(tiers, levels, first.late, hour), {}, true).res;
}

} // namespace joule::db
