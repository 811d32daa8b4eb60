#include "db/partitions.hpp"

#include <pqxx/pqxx>

#include "core/timefmt.hpp"
#include "db/session.hpp"

namespace joule::db {

std::string partition_name(std::int64_t start, std::int64_t interval_us) {
  auto text = format_rfc3339(start);  // 2026-11-27T12:00:00Z
  std::string digits;
  for (char c : text.substr(0, 16))
    if (c >= '0' && c <= '9')
      digits += c;
  // Whole days get yyyymmdd, finer intervals yyyymmddhhmm.
  if (interval_us % (86400 * micros_per_second) == 0)
    digits = digits.substr(0, 8);
  return "telemetry_p" + digits;
}

partition_report ensure_partitions(session& s, std::int64_t interval_us, int ahead, int behind) {
  partition_report rep;
  std::int64_t now;
  {
    pqxx::nontransaction q{s.conn()};
    now = q.exec("SELECT (extract(epoch from now()) * 1000000)::bigint")[0][0].as<std::int64_t>();
  }
  {
    // Partitions dropped, detached or attached by someone else since the last check. The
    // event trigger of migration 0004 does this at once when it exists (it needs a
    // superuser); this is the fallback, and cheap: two anti-joins over a few catalog rows.
    pqxx::work tx{s.conn()};
    tx.exec("SELECT pg_advisory_xact_lock(hashtext('joule.partitions'))");
    rep.synced = tx.exec("SELECT joule_sync_partitions()")[0][0].as<int>();
    tx.commit();
  }
  const std::int64_t first = floor_to(now, interval_us) - behind * interval_us;
  const std::int64_t last = floor_to(now, interval_us) + ahead * interval_us;
  for (std::int64_t start = first; start <= last; start += interval_us) {
    const auto name = partition_name(start, interval_us);
    pqxx::work tx{s.conn()};
    tx.exec("SELECT pg_advisory_xact_lock(hashtext('joule.partitions'))");
    // This transaction's own row move and DDL are not data changes: the log triggers and the
    // partition event trigger stay silent in it (SET LOCAL: this transaction only).
    tx.exec("SET LOCAL joule.partition_maintenance = 'on'");
    if (!tx.exec_params("SELECT 1 FROM pg_class WHERE relname = $1 AND relkind = 'r'", name)
             .empty())
      continue;
    // Skip a period that an existing partition already covers in part (the interval was
    // changed): attaching would fail, and that period keeps its old partitions.
    auto lo = format_rfc3339(start), hi = format_rfc3339(start + interval_us);
    auto overlap = tx.exec_params(
        "SELECT 1 FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'telemetry'::regclass AND c.relname <> 'telemetry_default' "
        "AND NOT (pg_get_expr(c.relpartbound, c.oid) LIKE '%DEFAULT%') "
        "AND (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'FROM \\(''([^'']+)''\\) TO'))[1]::timestamptz < $2 "
        "AND (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'TO \\(''([^'']+)''\\)'))[1]::timestamptz > $1",
        lo, hi);
    if (!overlap.empty())
      continue;
    // DDL cannot take parameters; the name and bounds are generated here from integers.
    tx.exec("CREATE TABLE " + name + " (LIKE telemetry INCLUDING DEFAULTS INCLUDING CONSTRAINTS)");
    tx.exec("ALTER TABLE " + name + " ADD CONSTRAINT " + name + "_range CHECK (ts >= '" + lo +
            "' AND ts < '" + hi + "')");
    // Moving rows out of the default partition changes no aggregate: the default partition's
    // statement triggers are silenced above and the new one has none yet.
    auto moved = tx.exec_params("WITH m AS (DELETE FROM telemetry_default WHERE ts >= $1 AND "
                                "ts < $2 RETURNING *) INSERT INTO " + name +
                                    " SELECT * FROM m",
                                lo, hi);
    rep.rows_moved += static_cast<std::int64_t>(moved.affected_rows());
    tx.exec("ALTER TABLE telemetry ATTACH PARTITION " + name + " FOR VALUES FROM ('" + lo +
            "') TO ('" + hi + "')");
    tx.exec("ALTER TABLE " + name + " DROP CONSTRAINT " + name + "_range");
    // Its own statement triggers, so that writes naming the partition are logged too.
    tx.exec_params("SELECT joule_adopt_partition($1::regclass, false)", name);
    tx.commit();
    ++rep.created;
  }
  return rep;
}

} // namespace joule::db
