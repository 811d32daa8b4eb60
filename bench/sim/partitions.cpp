#include "sim/partitions.hpp"

#include <pqxx/pqxx>

namespace joule::bench {

std::string ensure_daily_partitions(const std::string& conninfo, unix_seconds start,
                                    unix_seconds end) {
  pqxx::connection conn(conninfo);
  std::string notes;
  for (unix_seconds day = floor_to(start, 86400); day < end; day += 86400) {
    const std::string from = format_rfc3339(day), to = format_rfc3339(day + 86400);
    // The name and bounds are built from formatted dates only, never from input text.
    const std::string name =
        "telemetry_p" + from.substr(0, 4) + from.substr(5, 2) + from.substr(8, 2);
    try {
      pqxx::work tx(conn);
      // The server's partition maintenance (db/partitions.cpp) takes the same lock and uses
      // the same telemetry_pYYYYMMDD names, so whichever runs first makes the partition.
      tx.exec("SELECT pg_advisory_xact_lock(hashtext('joule.partitions'))");
      tx.exec("CREATE TABLE IF NOT EXISTS " + name + " PARTITION OF telemetry FOR VALUES FROM ('" +
              from + "') TO ('" + to + "')");
      tx.commit();
    } catch (const pqxx::sql_error& e) {
      // 42P17: another partition already covers (part of) the day — fine, rows go there.
      // Anything else (e.g. 23514: the default partition holds rows of that day) is noted.
      if (e.sqlstate() != "42P17")
        notes += "partition for " + from.substr(0, 10) + " not created: " + e.what();
    }
  }
  return notes;
}

} // namespace joule::bench
