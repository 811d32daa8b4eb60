#include "db/live_parts.hpp"

#include <pqxx/pqxx>

#include "core/timefmt.hpp"
#include "db/session.hpp"

namespace joule::db {
namespace {

std::string us(const std::string& expr) {
  return "(extract(epoch from " + expr + ") * 1000000)::bigint";
}

std::optional<double> opt_double(const pqxx::field& f) {
  if (f.is_null())
    return std::nullopt;
  return f.as<double>();
}

const std::string origin = "'2000-01-01 00:00:00+00'";

// The version text of `rollup` over the hours of [$lo, $hi), as live_snapshot::version_text
// writes it.
std::string versions_sql(const std::string& rollup, const std::string& lo, const std::string& hi) {
  return "(SELECT coalesce(string_agg(" + us("hour") +
         "::text || ':' || gen::text, ',' ORDER BY hour), '') FROM rollup_versions "
         "WHERE rollup = '" + rollup + "' AND hour >= date_bin('1 hour', " + lo + ", " + origin +
         ") AND hour < " + hi + ")";
}

} // namespace

settled_power_part settled_power(session& s, const std::string& device, std::int64_t step,
                                 std::int64_t lo, std::int64_t hi) {
  pqxx::nontransaction q{s.conn()};
  // One statement: the versions and the rows come from the same snapshot.
  // The versions travel once, in a first row of their own (k = 0), not on every row.
  auto sql = "SELECT 0 AS k, " + versions_sql("device_1m", "$2::timestamptz", "$3::timestamptz") +
             ", NULL::bigint AS b, NULL::double precision, NULL::double precision UNION ALL "
             "SELECT 1, NULL, s.b, s.p, s.m FROM (SELECT " +
             us("date_bin($4::interval, bucket, " + origin + ")") +
             " AS b, sum(power_w_sum) / NULLIF(sum(power_w_count), 0) AS p, max(power_w_max) AS m "
             "FROM rollup_device_1m WHERE device_id = $1::uuid AND bucket >= $2::timestamptz "
             "AND bucket < $3::timestamptz GROUP BY 1) s ORDER BY k, b";
  s.prepare("live_settled_power", sql);
  auto r = q.exec_prepared("live_settled_power", device, format_rfc3339(lo), format_rfc3339(hi),
                           std::to_string(step / micros_per_second) + " seconds");
  settled_power_part out;
  for (auto row : r) {
    if (row[0].as<int>() == 0) {
      out.versions = row[1].as<std::string>();
      continue;
    }
    out.points.push_back({row[2].as<std::int64_t>(), opt_double(row[3]), opt_double(row[4])});
  }
  return out;
}

settled_top_part settled_top(session& s, const std::vector<std::string>& devices,
                             std::int64_t lo, std::int64_t hi) {
  pqxx::nontransaction q{s.conn()};
  // The tiers of the database path: device_1h below its watermark (floored to the hour,
  // clamped to the range), device_1m from there on. Devices are passed in (the snapshot's
  // registered devices of the household), so the part is computed for exactly that set.
  auto sql =
      "WITH w AS (SELECT least(greatest(coalesce((SELECT date_bin('1 hour', watermark, " + origin +
      ") FROM rollup_state WHERE name = 'device_1h'), $2::timestamptz), $2::timestamptz), "
      "date_bin('1 hour', $3::timestamptz, " + origin + ")) AS h), "
      "d AS (SELECT unnest($1::uuid[]) AS id), "
      "x AS (SELECT device_id, bucket AS b, energy_wh_sum AS e FROM rollup_device_1h, w "
      "WHERE device_id IN (SELECT id FROM d) AND bucket >= $2::timestamptz AND bucket < w.h "
      "UNION ALL SELECT device_id, bucket, energy_wh_sum FROM rollup_device_1m, w "
      "WHERE device_id IN (SELECT id FROM d) AND bucket >= w.h AND bucket < $3::timestamptz) "
      "SELECT 0 AS k, " + versions_sql("device_1h", "$2::timestamptz", "$3::timestamptz") +
      ", " + versions_sql("device_1m", "$2::timestamptz", "$3::timestamptz") +
      ", NULL::bigint AS h, NULL::text, NULL::double precision UNION ALL "
      "SELECT 1, NULL, NULL, s.h, s.d, s.e FROM (SELECT " +
      us("date_bin('1 hour', b, " + origin + ")") +
      " AS h, device_id::text AS d, sum(e) AS e FROM x GROUP BY 1, 2 HAVING sum(e) IS NOT NULL) s "
      "ORDER BY k, h";
  s.prepare("live_settled_top", sql);
  std::string ids = "{";
  for (std::size_t i = 0; i < devices.size(); ++i)
    ids += (i ? "," : "") + devices[i];
  ids += "}";
  auto r = q.exec_prepared("live_settled_top", ids, format_rfc3339(lo), format_rfc3339(hi));
  settled_top_part out;
  for (auto row : r) {
    if (row[0].as<int>() == 0) {
      out.versions_1h = row[1].as<std::string>();
      out.versions_1m = row[2].as<std::string>();
      continue;
    }
    out.rows.push_back({row[3].as<std::int64_t>(), row[4].as<std::string>(), row[5].as<double>()});
  }
  return out;
}

} // namespace joule::db
