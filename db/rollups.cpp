#include "db/rollups.hpp"

#include <chrono>
#include <optional>

#include <pqxx/pqxx>

#include "core/timefmt.hpp"
#include "db/ranges.hpp"
#include "db/session.hpp"

namespace joule::db {
namespace {

constexpr std::int64_t minute = 60 * micros_per_second;

std::string ts(std::int64_t t) { return format_rfc3339(t); }

// Epoch microseconds of a timestamptz expression, exact (extract returns numeric).
std::string us(const std::string& expr) {
  return "(extract(epoch from " + expr + ") * 1000000)::bigint";
}

struct log_entry {
  range widened;
  std::int64_t logged_at = 0;
};

std::int64_t materialise(pqxx::work& tx, const rollup_spec& spec, const range& r) {
  tx.exec_params("DELETE FROM " + spec.table + " WHERE bucket >= $1 AND bucket < $2", ts(r.lo),
                 ts(r.hi));
  std::string cols = "bucket, " + spec.key_column + ", energy_wh_sum, power_w_sum, power_w_count";
  std::string aggs = "sum(energy_wh), sum(power_w), count(power_w)";
  if (spec.has_max) {
    cols += ", power_w_max";
    aggs += ", max(power_w)";
  }
  auto res = tx.exec_params("INSERT INTO " + spec.table + " (" + cols + ") SELECT date_bin('" +
                                spec.width_sql + "', ts, '2000-01-01 00:00:00+00'), " +
                                spec.key_column + ", " + aggs +
                                " FROM telemetry WHERE ts >= $1 AND ts < $2 GROUP BY 1, 2",
                            ts(r.lo), ts(r.hi));
  return static_cast<std::int64_t>(res.affected_rows());
}

// The shared core of both refresh kinds. `wanted` are ranges below the old watermark to
// re-materialise (already clipped by the caller's rules); the watermark moves to `target`.
refresh_report run(session& s, const rollup_spec& spec, const refresh_policy_us& p,
                   bool wait_for_lock, std::optional<range> manual) {
  auto started = std::chrono::steady_clock::now();
  refresh_report rep;
  pqxx::work tx{s.conn()};
  auto lock_fn = wait_for_lock ? "pg_advisory_xact_lock" : "pg_try_advisory_xact_lock";
  auto lock = tx.exec_params(std::string("SELECT ") + lock_fn +
                                 "(hashtext('joule.refresh.' || $1))::text",
                             spec.name);
  if (!wait_for_lock && lock[0][0].as<std::string>() != "true") {
    // Another process is refreshing; report the watermark it last committed.
    rep.skipped = true;
    auto cur = tx.exec_params("SELECT " + us("watermark") + " FROM rollup_state WHERE name = $1",
                              spec.name);
    if (!cur.empty() && !cur[0][0].is_null())
      rep.watermark_after = cur[0][0].as<std::int64_t>();
    return rep;
  }
  auto st = tx.exec_params("SELECT " + us("now()") + ", " + us("watermark") +
                               " FROM rollup_state WHERE name = $1 FOR UPDATE",
                           spec.name);
  if (st.empty())
    throw std::runtime_error("rollup_state has no row for " + spec.name + " (run migrate)");
  const std::int64_t now = st[0][0].as<std::int64_t>();
  std::optional<std::int64_t> wm;
  if (!st[0][1].is_null())
    wm = st[0][1].as<std::int64_t>();
  rep.db_now = now;
  rep.watermark_before = wm.value_or(0);

  // Consume the log first: every entry we see is committed, so its data is visible to the
  // aggregation statements below (READ COMMITTED takes a fresh snapshot per statement).
  std::vector<log_entry> entries;
  for (auto row : tx.exec_params("DELETE FROM rollup_invalidations WHERE rollup = $1 RETURNING " +
                                     us("lo") + ", " + us("hi") + ", " + us("logged_at"),
                                 spec.name)) {
    entries.push_back({widen_inclusive(row[0].as<std::int64_t>(), row[1].as<std::int64_t>(),
                                       spec.width),
                       row[2].as<std::int64_t>()});
  }
  rep.invalidations_consumed = static_cast<int>(entries.size());

  const std::int64_t win_lo = ceil_to(now - p.start_offset, spec.width);
  const std::int64_t win_hi = floor_to(now - p.end_offset, spec.width);

  // Where new data starts: the watermark, or the first reading on first run.
  std::int64_t wm_old;
  if (wm) {
    wm_old = *wm;
  } else {
    auto first = tx.exec("SELECT " + us("min(ts)") + " FROM telemetry");
    wm_old = first[0][0].is_null() ? win_hi : floor_to(first[0][0].as<std::int64_t>(), spec.width);
  }
  std::int64_t target = std::max(wm_old, win_hi);
  if (manual)
    target = std::max(wm_old, std::min(win_hi, manual->hi));
  if (p.max_batch > 0 && target - wm_old > p.max_batch) {
    target = std::max(wm_old + spec.width, floor_to(wm_old + p.max_batch, spec.width));
    rep.more_pending = true;
  }

  range_set todo;
  if (target > wm_old)
    todo.push_back({wm_old, target});
  if (manual) {
    todo.push_back({manual->lo, std::min(manual->hi, wm_old)});
  } else {
    range_set late;
    for (auto& e : entries)
      late.push_back(e.widened);
    for (auto& r : clip(late, win_lo, wm_old))
      todo.push_back(r);
  }
  todo = normalize(todo);

  for (auto& r : todo) {
    rep.rows_written += materialise(tx, spec, r);
    rep.materialised_us += r.hi - r.lo;
  }
  rep.ranges = static_cast<int>(todo.size());

  // Log entries not covered now and below the new watermark stay for a later refresh (data
  // above the watermark is read raw and materialised when the watermark passes it). They
  // keep their logged_at so fresh_as_of stays truthful about what is not reflected yet.
  range_set done = todo;
  done.push_back({target, INT64_MAX});
  for (auto& e : entries) {
    for (auto& r : subtract({e.widened}, done)) {
      tx.exec_params("INSERT INTO rollup_invalidations (rollup, lo, hi, logged_at) VALUES "
                     "($1, $2, $3, 'epoch'::timestamptz + $4 * interval '1 microsecond')",
                     spec.name, ts(r.lo), ts(r.hi - 1), e.logged_at);
      ++rep.invalidations_kept;
    }
  }
  rep.watermark_after = target;
  rep.duration_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
  tx.exec_params("UPDATE rollup_state SET watermark = $2, last_refresh_at = now(), "
                 "last_duration_ms = $3, refreshes = refreshes + 1 WHERE name = $1",
                 spec.name, ts(target), rep.duration_ms);
  tx.commit();
  return rep;
}

} // namespace

const std::vector<rollup_spec>& rollups() {
  static const std::vector<rollup_spec> all = {
      {"device_1m", "rollup_device_1m", minute, "1 minute", "device_id", true},
      {"household_5m", "rollup_household_5m", 5 * minute, "5 minutes", "household_id", false},
      {"device_1h", "rollup_device_1h", 60 * minute, "1 hour", "device_id", true},
  };
  return all;
}

const rollup_spec* find_rollup(const std::string& name) {
  for (auto& r : rollups())
    if (r.name == name)
      return &r;
  return nullptr;
}

refresh_report refresh_cycle(session& s, const rollup_spec& spec, const refresh_policy_us& p) {
  return run(s, spec, p, false, std::nullopt);
}

refresh_report refresh_range(session& s, const rollup_spec& spec, const refresh_policy_us& p,
                             std::int64_t start, std::int64_t end) {
  range r{floor_to(start, spec.width), ceil_to(end, spec.width)};
  return run(s, spec, p, true, r);
}

} // namespace joule::db
