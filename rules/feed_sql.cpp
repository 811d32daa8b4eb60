#include "rules/feed_sql.hpp"

#include <algorithm>

#include <pqxx/pqxx>

#include "core/timefmt.hpp"
#include "db/session.hpp"

namespace joule::rules {
namespace {

constexpr std::int64_t five_min = 5 * minute_us;

std::string ts_or_minus_inf(const std::optional<std::int64_t>& t) {
  return t ? format_rfc3339(*t) : std::string("-infinity");
}

void collect(const pqxx::result& res, std::int64_t width, std::int64_t closed_before,
             std::unordered_map<std::string, std::vector<bucket_value>>& into) {
  for (auto row : res) {
    bucket_value b;
    b.start = row[1].as<std::int64_t>();
    b.width = width;
    if (!row[2].is_null())
      b.energy_sum = row[2].as<double>();
    if (!row[3].is_null())
      b.power_sum = row[3].as<double>();
    b.power_count = row[4].is_null() ? 0 : row[4].as<std::int64_t>();
    if (!row[5].is_null())
      b.power_max = row[5].as<double>();
    b.closed = b.start + width <= closed_before;
    into[row[0].as<std::string>()].push_back(b);
  }
}

void copy_buckets(const std::unordered_map<std::string, std::vector<db::live_bucket>>& from,
                  const std::vector<std::string>& ids, std::int64_t lo, std::int64_t width,
                  std::int64_t closed_before,
                  std::unordered_map<std::string, std::vector<bucket_value>>& into) {
  for (auto& id : ids) {
    auto it = from.find(id);
    if (it == from.end())
      continue;
    for (auto& lb : it->second) {
      if (lb.start < lo)
        continue;
      bucket_value b;
      b.start = lb.start;
      b.width = width;
      b.energy_sum = lb.energy_sum;
      b.power_sum = lb.power_sum;
      b.power_count = lb.power_count;
      b.power_max = lb.power_max;
      b.closed = b.start + width <= closed_before;
      into[id].push_back(b);
    }
  }
}

void keep_newest(std::unordered_map<std::string, std::int64_t>& into, const pqxx::result& res) {
  for (auto row : res) {
    if (row[1].is_null())
      continue;
    auto t = row[1].as<std::int64_t>();
    auto [it, fresh] = into.emplace(row[0].as<std::string>(), t);
    if (!fresh && it->second < t)
      it->second = t;
  }
}

// silence_sec: the newest reading of each tracked device or household.
void read_last_seen(pqxx::nontransaction& q, const feed_request& req,
                    const std::optional<std::int64_t>& wm_device_1m, feed_data& out) {
  if (!req.silence_device_ids_new.empty()) {
    // Telemetry has no (device_id, ts) index: the 1m rollup's primary key finds the minute of
    // the newest rolled-up reading, one minute of raw rows gives its time, and the raw tail
    // above the watermark has whatever came after.
    auto ids = uuid_array(req.silence_device_ids_new);
    keep_newest(out.last_seen_device,
                q.exec_params(
                    "SELECT x.id::text, (extract(epoch from COALESCE((SELECT max(t.ts) FROM "
                    "telemetry t WHERE t.device_id = x.id AND t.ts >= lb.b AND t.ts < lb.b + "
                    "interval '1 minute'), lb.b)) * 1000000)::bigint "
                    "  FROM unnest($1::uuid[]) AS x(id) "
                    " CROSS JOIN LATERAL (SELECT max(r.bucket) AS b FROM rollup_device_1m r "
                    "                      WHERE r.device_id = x.id) lb",
                    ids));
    keep_newest(out.last_seen_device,
                q.exec_params("SELECT device_id::text, (extract(epoch from max(ts)) * 1000000)"
                              "::bigint FROM telemetry WHERE device_id = ANY($1::uuid[]) "
                              "AND ts >= $2::timestamptz GROUP BY 1",
                              ids, ts_or_minus_inf(wm_device_1m)));
    out.queries += 2;
  }
  if (!req.silence_household_ids_new.empty()) {
    // (household_id, ts) is indexed: one backward probe per household and partition.
    keep_newest(out.last_seen_household,
                q.exec_params("SELECT x.id::text, (extract(epoch from (SELECT max(t.ts) FROM "
                              "telemetry t WHERE t.household_id = x.id)) * 1000000)::bigint "
                              "FROM unnest($1::uuid[]) AS x(id)",
                              uuid_array(req.silence_household_ids_new)));
    ++out.queries;
  }
  // The recent tail, and everything above the 1m watermark (not in the rollup yet): a reading
  // committed a while after its own timestamp still counts. Older late readings are found by
  // the periodic full lookup (bucket_feed: every silence_full_lookup_us).
  auto tail_from = out.db_now - silence_tail_us;
  if (wm_device_1m && *wm_device_1m < tail_from)
    tail_from = std::max(*wm_device_1m, out.db_now - silence_max_tail_us);
  const auto tail = format_rfc3339(tail_from);
  if (!req.silence_device_ids.empty()) {
    keep_newest(out.last_seen_device,
                q.exec_params("SELECT device_id::text, (extract(epoch from max(ts)) * 1000000)"
                              "::bigint FROM telemetry WHERE device_id = ANY($1::uuid[]) "
                              "AND ts >= $2::timestamptz GROUP BY 1",
                              uuid_array(req.silence_device_ids), tail));
    ++out.queries;
  }
  if (!req.silence_household_ids.empty()) {
    keep_newest(out.last_seen_household,
                q.exec_params("SELECT household_id::text, (extract(epoch from max(ts)) * 1000000)"
                              "::bigint FROM telemetry WHERE household_id = ANY($1::uuid[]) "
                              "AND ts >= $2::timestamptz GROUP BY 1",
                              uuid_array(req.silence_household_ids), tail));
    ++out.queries;
  }
}

} // namespace

feed_data feed_from_snapshot(const db::live_snapshot& snap, const feed_request& req) {
  feed_data out;
  out.db_now = snap.db_now;
  const auto closed_before = snap.db_now - req.grace_us;
  const auto lo1 = feed_lookback(snap.db_now, minute_us, req.grace_us);
  const auto lo5 = feed_lookback(snap.db_now, five_min, req.grace_us);
  copy_buckets(snap.device_1m, req.device_1m_ids, lo1, minute_us, closed_before, out.device_1m);
  copy_buckets(snap.device_1m, req.device_5m_ids, lo5, minute_us, closed_before, out.device_1m);
  if (snap.households_ok)
    copy_buckets(snap.household_5m, req.household_5m_ids, lo5, five_min, closed_before,
                 out.household_5m);
  copy_buckets(snap.household_1m, req.household_1m_ids, lo1, minute_us, closed_before,
               out.household_1m);
  return out;
}

std::int64_t feed_lookback(std::int64_t now, std::int64_t width, std::int64_t grace) {
  return floor_to(now - grace, width) - width;
}

std::string uuid_array(const std::vector<std::string>& ids) {
  std::string out = "{";
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (i)
      out += ',';
    out += ids[i];
  }
  return out + "}";
}

feed_data read_feed(db::session& s, const feed_request& req) {
  feed_data out;
  pqxx::nontransaction q{s.conn()};
  // now() and the watermarks first, in one round trip: passing the watermark as a parameter
  // lets the planner prune telemetry partitions.
  std::optional<std::int64_t> wm_device_1m, wm_household_5m;
  auto snap = q.exec(
      "SELECT (extract(epoch from now()) * 1000000)::bigint, name, "
      "(extract(epoch from watermark) * 1000000)::bigint FROM rollup_state "
      "WHERE name IN ('device_1m', 'household_5m')");
  ++out.queries;
  for (auto row : snap) {
    out.db_now = row[0].as<std::int64_t>();
    if (row[2].is_null())
      continue;
    if (row[1].as<std::string>() == "device_1m")
      wm_device_1m = row[2].as<std::int64_t>();
    else
      wm_household_5m = row[2].as<std::int64_t>();
  }
  if (snap.empty()) {
    out.db_now = q.exec("SELECT (extract(epoch from now()) * 1000000)::bigint")[0][0]
                     .as<std::int64_t>();
    ++out.queries;
  }
  const auto now = out.db_now;
  const auto closed_before = now - req.grace_us;
  auto lo1 = feed_lookback(now, minute_us, req.grace_us);
  auto lo5 = feed_lookback(now, five_min, req.grace_us);
  if (req.catch_up_us > 0) {
    lo1 = std::min(lo1, floor_to(now - req.catch_up_us, minute_us));
    lo5 = std::min(lo5, floor_to(now - req.catch_up_us, five_min));
  }

  if (!req.device_1m_ids.empty() || !req.device_5m_ids.empty()) {
    // 1m state for every device; 5m rules merge it (sums of sums, max of maxes).
    auto res = q.exec_params(
        "SELECT device_id::text, (extract(epoch from bucket) * 1000000)::bigint, energy_wh_sum, "
        "       power_w_sum, power_w_count, power_w_max "
        "  FROM rollup_device_1m "
        " WHERE ((device_id = ANY($1::uuid[]) AND bucket >= $3::timestamptz) "
        "     OR (device_id = ANY($2::uuid[]) AND bucket >= $4::timestamptz)) "
        "   AND bucket >= $4::timestamptz AND bucket < $5::timestamptz "
        "UNION ALL "
        "SELECT device_id::text, (extract(epoch from date_bin('1 minute', ts, "
        "       '2000-01-01 00:00:00+00')) * 1000000)::bigint, sum(energy_wh), sum(power_w), "
        "       count(power_w), max(power_w) "
        "  FROM telemetry "
        " WHERE ((device_id = ANY($1::uuid[]) AND ts >= $3::timestamptz) "
        "     OR (device_id = ANY($2::uuid[]) AND ts >= $4::timestamptz)) "
        "   AND ts >= GREATEST($4::timestamptz, $5::timestamptz) "
        " GROUP BY 1, 2 ORDER BY 2",
        uuid_array(req.device_1m_ids), uuid_array(req.device_5m_ids), format_rfc3339(lo1),
        format_rfc3339(lo5), ts_or_minus_inf(wm_device_1m));
    ++out.queries;
    collect(res, minute_us, closed_before, out.device_1m);
  }
  if (!req.household_5m_ids.empty()) {
    // Three tiers, so that no cycle aggregates minutes of raw rows for every household:
    // household 5m rollup below its watermark, then the device 1m rollup (summed over the
    // household's registered devices) up to the 1m watermark, then raw rows. The middle tier
    // assumes a device's rows carry its registered household, as the analytics read path does.
    auto res = q.exec_params(
        "SELECT household_id::text, (extract(epoch from bucket) * 1000000)::bigint, "
        "       energy_wh_sum, power_w_sum, power_w_count, NULL::double precision "
        "  FROM rollup_household_5m "
        " WHERE household_id = ANY($1::uuid[]) AND bucket >= $2::timestamptz "
        "   AND bucket < $3::timestamptz "
        "UNION ALL "
        "SELECT household_id::text, (extract(epoch from date_bin('5 minutes', t, "
        "       '2000-01-01 00:00:00+00')) * 1000000)::bigint, sum(e), sum(ps), sum(pc), "
        "       NULL::double precision "
        "  FROM (SELECT d.household_id, r.bucket AS t, r.energy_wh_sum AS e, "
        "               r.power_w_sum AS ps, r.power_w_count AS pc "
        "          FROM devices d JOIN rollup_device_1m r ON r.device_id = d.id "
        "         WHERE d.household_id = ANY($1::uuid[]) "
        "           AND r.bucket >= GREATEST($2::timestamptz, $3::timestamptz) "
        "           AND r.bucket < $4::timestamptz "
        "        UNION ALL "
        "        SELECT household_id, ts, energy_wh, power_w, (power_w IS NOT NULL)::int "
        "          FROM telemetry "
        "         WHERE household_id = ANY($1::uuid[]) "
        "           AND ts >= GREATEST($2::timestamptz, $3::timestamptz, $4::timestamptz)) x "
        " GROUP BY 1, 2 ORDER BY 2",
        uuid_array(req.household_5m_ids), format_rfc3339(lo5), ts_or_minus_inf(wm_household_5m),
        ts_or_minus_inf(wm_device_1m));
    ++out.queries;
    collect(res, five_min, closed_before, out.household_5m);
  }
  if (!req.household_1m_ids.empty()) {
    // No household 1m rollup exists: two minutes of raw rows per household, read through the
    // (household_id, ts) index.
    auto res = q.exec_params(
        "SELECT household_id::text, (extract(epoch from date_bin('1 minute', ts, "
        "       '2000-01-01 00:00:00+00')) * 1000000)::bigint, sum(energy_wh), sum(power_w), "
        "       count(power_w), max(power_w) "
        "  FROM telemetry WHERE household_id = ANY($1::uuid[]) AND ts >= $2::timestamptz "
        " GROUP BY 1, 2 ORDER BY 2",
        uuid_array(req.household_1m_ids), format_rfc3339(lo1));
    ++out.queries;
    collect(res, minute_us, closed_before, out.household_1m);
  }
  read_last_seen(q, req, wm_device_1m, out);
  return out;
}

} // namespace joule::rules
