#include "db/rollups.hpp"

#include <chrono>
#include <optional>

#include <pqxx/pqxx>

#include "core/timefmt.hpp"
#include "db/ranges.hpp"
#include "db/session.hpp"

namespace joule::db {
namespace {

std::string ts(std::int64_t t) { return format_rfc3339(t); }

// Epoch microseconds of a timestamptz expression, exact (extract returns numeric).
std::string us(const std::string& expr) {
  return "(extract(epoch from " + expr + ") * 1000000)::bigint";
}

// A log bound read back as µs. Writers may store any timestamptz (even 'infinity'), which
// has no µs value: clamp to a span far wider than any window instead of failing every cycle.
std::string clamped_us(const std::string& col) {
  return us("least(greatest(" + col + ", timestamptz '1000-01-01 00:00:00+00'), "
            "timestamptz '3000-01-01 00:00:00+00')");
}

// µs since the epoch (a bigint SQL expression) as timestamptz.
std::string at(const std::string& expr) {
  return "('epoch'::timestamptz + (" + expr + ") * interval '1 microsecond')";
}

// A bigint[] literal for a parameter: one statement instead of one round trip per range.
std::string bigint_array(const std::vector<std::int64_t>& v) {
  std::string out = "{";
  for (std::size_t i = 0; i < v.size(); ++i)
    out += (i ? "," : "") + std::to_string(v[i]);
  return out + "}";
}

struct log_entry {
  range widened;
  std::int64_t logged_at = 0;
};

// Rollup rows written and source rows (raw readings, or the source rollup's rows) read.
std::pair<std::int64_t, std::int64_t> materialise(pqxx::work& tx, const rollup_spec& spec,
                                                  const range& r) {
  tx.exec_params("DELETE FROM " + spec.table + " WHERE bucket >= $1 AND bucket < $2", ts(r.lo),
                 ts(r.hi));
  std::string cols = "bucket, " + spec.key_column + ", energy_wh_sum, power_w_sum, power_w_count";
  std::string bin = "date_bin('" + spec.width_sql + "', ";
  std::string from;
  if (spec.source.empty()) {
    cols += spec.has_max ? ", power_w_max" : "";
    from = bin + "ts, '2000-01-01 00:00:00+00'), " + spec.key_column +
           ", sum(energy_wh), sum(power_w), count(power_w)" +
           (spec.has_max ? ", max(power_w)" : "") +
           ", count(*) FROM telemetry WHERE ts >= $1 AND ts < $2";
  } else {
    // Mergeable state: sums of sums and counts, max of maxima (never averages).
    cols += spec.has_max ? ", power_w_max" : "";
    from = bin + "bucket, '2000-01-01 00:00:00+00'), " + spec.key_column +
           ", sum(energy_wh_sum), sum(power_w_sum), sum(power_w_count)" +
           (spec.has_max ? ", max(power_w_max)" : "") + ", count(*) FROM rollup_" + spec.source +
           " WHERE bucket >= $1 AND bucket < $2";
  }
  // The source row count rides along (catch-up progress reports rows/s): the grouped rows are
  // kept once (small next to the rows they aggregate) and inserted without the count column.
  std::string out_cols = "c1, c2, c3, c4, c5" + std::string(spec.has_max ? ", c6" : "");
  std::string all_cols = out_cols + ", n";
  auto res = tx.exec_params("WITH g (" + all_cols + ") AS (SELECT " + from +
                                " GROUP BY 1, 2), ins AS (INSERT INTO " + spec.table + " (" +
                                cols + ") SELECT " + out_cols + " FROM g RETURNING 1) "
                                "SELECT (SELECT count(*) FROM ins), (SELECT coalesce(sum(n), 0) "
                                "FROM g)::bigint",
                            ts(r.lo), ts(r.hi));
  return {res[0][0].as<std::int64_t>(), res[0][1].as<std::int64_t>()};
}

// Puts log ranges back. Pending ones (inside the window, left for the next cycle) are plain
// rows; kept ones (older than start_offset) are merged with the kept rows they overlap or
// touch, so the log holds one row per island of old ranges however many writes made it, and
// rows that did not change are not rewritten. One statement each.
void put_back(pqxx::work& tx, const std::string& rollup, const std::vector<logged_range>& rs,
              bool kept) {
  if (rs.empty())
    return;
  std::vector<std::int64_t> lo, hi, logged;
  for (auto& x : rs) {
    lo.push_back(x.r.lo);
    hi.push_back(x.r.hi - 1);  // the log's hi is inclusive
    logged.push_back(x.logged_at);
  }
  const std::string input = "SELECT " + at("l") + " AS lo, " + at("h") + " AS hi, " + at("a") +
                            " AS logged_at FROM unnest($2::bigint[], $3::bigint[], "
                            "$4::bigint[]) AS u(l, h, a)";
  if (!kept) {
    tx.exec_params("INSERT INTO rollup_invalidations (rollup, lo, hi, logged_at) SELECT $1, lo, "
                   "hi, logged_at FROM (" + input + ") n",
                   rollup, bigint_array(lo), bigint_array(hi), bigint_array(logged));
    return;
  }
  // Islands: a row starts a new one unless it overlaps or touches (1 µs apart: the log's
  // bounds are inclusive) a row before it in lo order.
  tx.exec_params(
      "WITH n AS (" + input + "), "
      "o AS (DELETE FROM rollup_invalidations r WHERE r.rollup = $1 AND r.kept AND EXISTS ("
      "  SELECT 1 FROM n WHERE r.lo <= n.hi + interval '1 microsecond' "
      "  AND n.lo <= r.hi + interval '1 microsecond') RETURNING r.lo, r.hi, r.logged_at), "
      "a AS (SELECT * FROM n UNION ALL SELECT * FROM o), "
      "s AS (SELECT *, lo > max(hi) OVER (ORDER BY lo, hi ROWS BETWEEN UNBOUNDED PRECEDING AND "
      "  1 PRECEDING) + interval '1 microsecond' IS NOT FALSE AS starts FROM a), "
      "g AS (SELECT *, count(*) FILTER (WHERE starts) OVER (ORDER BY lo, hi) AS island FROM s) "
      "INSERT INTO rollup_invalidations (rollup, lo, hi, logged_at, kept) "
      "SELECT $1, min(lo), max(hi), min(logged_at), true FROM g GROUP BY island",
      rollup, bigint_array(lo), bigint_array(hi), bigint_array(logged));
}

// The shared core of both refresh kinds: new data from the watermark on, plus late ranges
// below it (the log's, clipped to the policy window, or the manual range).
refresh_report run(session& s, const rollup_spec& spec, const refresh_policy_us& p,
                   bool wait_for_lock, std::optional<range> manual) {
  auto started = std::chrono::steady_clock::now();
  refresh_report rep;
  pqxx::work tx{s.conn()};
  auto lock_fn = wait_for_lock ? "pg_advisory_xact_lock" : "pg_try_advisory_xact_lock";
  // The refresh accounts for the log rows it deletes (live_tail_consumed, put_back): the
  // setting tells migration 0017's triggers not to count them as unaccounted removals.
  auto lock = tx.exec_params(std::string("SELECT ") + lock_fn +
                                 "(hashtext('joule.refresh.' || $1))::text, "
                                 "set_config('joule.log_consumer', 'on', true)",
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
  auto st = tx.exec_params("SELECT " + us("now()") + ", " + us("watermark") + ", (SELECT " +
                               us("watermark") + " FROM rollup_state WHERE name = $2)" +
                               " FROM rollup_state WHERE name = $1 FOR UPDATE",
                           spec.name, spec.source);
  if (st.empty())
    throw std::runtime_error("rollup_state has no row for " + spec.name + " (run migrate)");
  const std::int64_t now = st[0][0].as<std::int64_t>();
  std::optional<std::int64_t> wm;
  if (!st[0][1].is_null())
    wm = st[0][1].as<std::int64_t>();
  rep.db_now = now;
  rep.watermark_before = wm.value_or(0);
  rep.watermark_after = wm.value_or(0);
  if (!spec.source.empty() && st[0][2].is_null())
    return rep;  // the source has nothing materialised yet: nothing to merge

  const std::int64_t win_lo = ceil_to(now - p.start_offset, spec.width);
  const std::int64_t win_hi = floor_to(now - p.end_offset, spec.width);
  // Materialise no further than the source's own watermark: above it the source has no rows.
  std::int64_t limit = win_hi;
  if (!spec.source.empty())
    limit = std::min(limit, floor_to(st[0][2].as<std::int64_t>(), spec.width));

  // Consume the log first: every entry we see is committed, so its data is visible to the
  // aggregation statements below (READ COMMITTED takes a fresh snapshot per statement).
  // Kept rows (older than start_offset, already merged) stay untouched unless the window
  // now reaches them (start_offset was raised) or a manual refresh covers them.
  std::string which = "NOT kept OR hi >= $2";
  std::vector<std::string> params{spec.name, ts(win_lo)};
  if (manual) {
    which += " OR (lo < $4 AND hi >= $3)";
    params.push_back(ts(manual->lo));
    params.push_back(ts(manual->hi));
  }
  // The live tail's rollup keeps what it consumes (migration 0017), in the same statement:
  // the tail may not have seen these rows yet. It reads raw rows only above the watermark this
  // refresh leaves, so rows wholly below the old one are of no use to it.
  std::string consume = "DELETE FROM rollup_invalidations WHERE rollup = $1 AND (" + which +
                        ") RETURNING " + clamped_us("lo") + ", " + clamped_us("hi") + ", " +
                        us("logged_at");
  const bool keep_consumed = spec.name == live_tail_rollup;
  if (keep_consumed) {
    std::string below;
    if (wm) {
      params.push_back(ts(*wm));
      below = " WHERE hi >= $" + std::to_string(params.size()) + "::timestamptz";
    }
    consume = "WITH d AS (DELETE FROM rollup_invalidations WHERE rollup = $1 AND (" + which +
              ") RETURNING xmin, lo, hi, inserted, logged_at), k AS (INSERT INTO "
              "live_tail_consumed (rollup, batch, xids, los, his, inserted) SELECT $1, "
              "txid_current(), array_agg(xmin), array_agg(lo), array_agg(hi), "
              "array_agg(inserted) FROM d" + below + " HAVING count(*) > 0) SELECT " +
              clamped_us("lo") + ", " + clamped_us("hi") + ", " + us("logged_at") + " FROM d";
  }
  std::vector<log_entry> entries;
  for (auto row : tx.exec_params(consume, pqxx::prepare::make_dynamic_params(params))) {
    entries.push_back({widen_inclusive(row[0].as<std::int64_t>(), row[1].as<std::int64_t>(),
                                       spec.width),
                       row[2].as<std::int64_t>()});
  }
  rep.invalidations_consumed = static_cast<int>(entries.size());

  // Where new data starts: the watermark, or the first reading on first run.
  std::int64_t wm_old;
  if (wm) {
    wm_old = *wm;
  } else {
    auto first = tx.exec(spec.source.empty()
                             ? "SELECT " + us("min(ts)") + " FROM telemetry"
                             : "SELECT " + us("min(bucket)") + " FROM rollup_" + spec.source);
    wm_old = first[0][0].is_null() ? limit : floor_to(first[0][0].as<std::int64_t>(), spec.width);
  }
  std::int64_t target = std::max(wm_old, limit);
  if (manual)
    target = std::max(wm_old, std::min(limit, manual->hi));
  // One transaction materialises at most max_batch of raw time (new and late data together,
  // new data first: it keeps the raw tail short); what does not fit waits for the next cycle,
  // which the refresh actor runs at once.
  const std::int64_t budget = p.max_batch > 0 ? p.max_batch : INT64_MAX;
  if (target - wm_old > budget) {
    const std::int64_t whole = target;
    target = std::max(wm_old + spec.width, floor_to(wm_old + budget, spec.width));
    // A budget under one bucket still takes that bucket: nothing may be left.
    rep.more_pending = target < whole;
  }
  const std::int64_t used = target - wm_old;

  range_set late;
  if (manual) {
    late = normalize({{manual->lo, std::min(manual->hi, wm_old)}});
  } else {
    range_set logged;
    for (auto& e : entries)
      logged.push_back(e.widened);
    // Oldest first: a range left for later must not drift out of the window.
    auto [taken, deferred] =
        take_budget(clip(logged, win_lo, wm_old), budget - used, spec.width, used == 0);
    late = taken;
    if (!deferred.empty())
      rep.more_pending = true;
    rep.backlog_us += span(deferred);
  }
  // New data still to materialise after this cycle (catch-up progress).
  rep.backlog_us += std::max<std::int64_t>(0, limit - target);

  range_set todo = late;
  if (target > wm_old)
    todo.push_back({wm_old, target});
  todo = normalize(todo);
  for (auto& r : todo) {
    auto [written, read] = materialise(tx, spec, r);
    rep.rows_written += written;
    rep.source_rows += read;
    rep.materialised_us += r.hi - r.lo;
  }
  rep.ranges = static_cast<int>(todo.size());

  // Log entries not covered now and below the new watermark stay (data above the watermark
  // is read raw and materialised when the watermark passes it), with their logged_at so
  // fresh_as_of stays truthful about what is not reflected yet.
  range_set done = todo;
  done.push_back({target, INT64_MAX});
  std::vector<logged_range> kept, pending;
  for (auto& e : entries) {
    for (auto& r : subtract({e.widened}, done)) {
      if (r.lo < win_lo)
        kept.push_back({{r.lo, std::min(r.hi, win_lo)}, e.logged_at});
      if (r.hi > win_lo)
        pending.push_back({{std::max(r.lo, win_lo), r.hi}, e.logged_at});
    }
  }
  pending = merge_logged(std::move(pending));
  put_back(tx, spec.name, pending, false);
  put_back(tx, spec.name, merge_logged(std::move(kept)), true);
  rep.invalidations_deferred = static_cast<int>(pending.size());

  // Rollups built from this one learn which of its old buckets changed, with the log time of
  // the writes behind the change (new data lies above their watermarks: nothing to tell).
  std::vector<logged_range> changed;
  for (auto& r : late) {
    std::int64_t logged = now;
    for (auto& e : entries)
      if (e.widened.lo < r.hi && r.lo < e.widened.hi)
        logged = std::min(logged, e.logged_at);
    changed.push_back({r, logged});
  }
  if (!changed.empty()) {
    std::vector<std::int64_t> lo, hi, logged;
    for (auto& x : changed) {
      lo.push_back(x.r.lo);
      hi.push_back(x.r.hi - 1);
      logged.push_back(x.logged_at);
    }
    tx.exec_params("INSERT INTO rollup_invalidations (rollup, lo, hi, logged_at) SELECT d.name, " +
                       at("l") + ", " + at("h") + ", " + at("a") +
                       " FROM unnest($2::bigint[], $3::bigint[], $4::bigint[]) AS u(l, h, a), "
                       "rollup_state d WHERE d.source = $1",
                   spec.name, bigint_array(lo), bigint_array(hi), bigint_array(logged));
  }

  rep.watermark_after = target;
  rep.duration_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
  // The tail's rollup also numbers this batch and prunes old ones (the newest pruned batch
  // tells a tail that saw none of it to re-read the raw tail whole).
  auto fin = tx.exec_params(
      std::string(keep_consumed
                      ? "WITH p AS (DELETE FROM live_tail_consumed WHERE rollup = $1 AND "
                        "consumed_at < now() - interval '" +
                            std::string(live_tail_consumed_retention) +
                            "' RETURNING batch) UPDATE rollup_state SET consumed_batch = "
                            "txid_current(), consumed_pruned = greatest(consumed_pruned, "
                            "(SELECT max(batch) FROM p)), "
                      : "UPDATE rollup_state SET ") +
          "watermark = $2, last_refresh_at = now(), last_duration_ms = $3, "
          "refreshes = refreshes + 1 WHERE name = $1 RETURNING (SELECT count(*) FROM "
          "rollup_invalidations WHERE rollup = $1 AND kept)",
      spec.name, ts(target), rep.duration_ms);
  rep.invalidations_kept = fin[0][0].as<int>();
  tx.commit();
  return rep;
}

} // namespace

rollup_spec make_spec(const config::rollup_def& d) {
  rollup_spec r;
  r.name = d.name;
  r.table = d.table();
  r.width = static_cast<std::int64_t>(d.width.count()) * micros_per_second;
  r.width_sql = d.width_sql();
  r.key_column = d.key_column;
  r.has_max = d.has_max;
  r.source = d.source;
  r.read_view = d.read_view;
  return r;
}

const std::vector<rollup_spec>& rollups() {
  static const std::vector<rollup_spec> all = [] {
    std::vector<rollup_spec> out;
    for (auto& d : config::rollup_defs())
      out.push_back(make_spec(d));
    return out;
  }();
  return all;
}

const rollup_spec* find_rollup(const std::string& name) {
  for (auto& r : rollups())
    if (r.name == name)
      return &r;
  return nullptr;
}

std::vector<std::string> ensure_rollup_schema(session& s, const std::vector<rollup_spec>& specs) {
  pqxx::work tx{s.conn()};
  tx.exec("SELECT pg_advisory_xact_lock(hashtext('joule.migrate'))");
  std::vector<std::string> names;
  for (auto& r : specs) {
    names.push_back(r.name);
    auto where = "rollup " + r.name + ": ";
    // Written only when missing or changed: a refresh holds its state row locked.
    tx.exec_params("INSERT INTO rollup_state (name, bucket_width, source) VALUES ($1, "
                   "$2::interval, NULLIF($3, '')) ON CONFLICT (name) DO NOTHING",
                   r.name, r.width_sql, r.source);
    auto st = tx.exec_params("SELECT " + us("'epoch'::timestamptz + bucket_width") +
                                 ", coalesce(source, '') FROM rollup_state WHERE name = $1",
                             r.name);
    if (st[0][0].as<std::int64_t>() != r.width)
      throw std::runtime_error(where + "rollup_state has another bucket width than the "
                               "definition (" + r.width_sql + "); a changed width needs a "
                               "migration that rebuilds the rollup under a new name");
    if (st[0][1].as<std::string>() != r.source)
      tx.exec_params("UPDATE rollup_state SET source = NULLIF($2, '') WHERE name = $1", r.name,
                     r.source);
    std::vector<std::string> need{"bucket", r.key_column, "energy_wh_sum", "power_w_sum",
                                  "power_w_count"};
    if (r.has_max)
      need.push_back("power_w_max");
    auto cols = tx.exec_params("SELECT attname FROM pg_attribute WHERE attrelid = "
                               "to_regclass($1) AND attnum > 0 AND NOT attisdropped",
                               r.table);
    if (cols.empty())
      throw std::runtime_error(where + "table " + r.table +
                               " is missing (add its migration in db/migrations/)");
    for (auto& c : need) {
      bool found = false;
      for (auto row : cols)
        found = found || row[0].as<std::string>() == c;
      if (!found)
        throw std::runtime_error(where + "table " + r.table + " has no column " + c);
    }
    if (tx.exec_params("SELECT to_regclass($1) IS NULL", r.read_view)[0][0].as<bool>())
      throw std::runtime_error(where + "read view " + r.read_view +
                               " is missing (add it in db/migrations/)");
  }
  std::string list;
  for (auto& n : names)
    list += (list.empty() ? "" : ",") + n;  // names are identifiers (config::validate)
  std::vector<std::string> unknown;
  for (auto row : tx.exec_params("SELECT name FROM rollup_state WHERE name <> ALL($1::text[]) "
                                 "ORDER BY name",
                                 "{" + list + "}"))
    unknown.push_back(row[0].as<std::string>());
  tx.commit();
  return unknown;
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
