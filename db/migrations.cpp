#include "db/migrations.hpp"

#include <set>

#include <pqxx/pqxx>

#include "core/log.hpp"
#include "db/rollups.hpp"
#include "db/session.hpp"

namespace joule::db {

std::vector<int> migrate(session& s) {
  std::vector<int> applied;
  for (auto& m : all_migrations()) {
    pqxx::work tx{s.conn()};
    tx.exec("SELECT pg_advisory_xact_lock(hashtext('joule.migrate'))");
    tx.exec("CREATE TABLE IF NOT EXISTS schema_migrations (version int PRIMARY KEY, "
            "name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())");
    auto have = tx.exec_params("SELECT 1 FROM schema_migrations WHERE version = $1", m.version);
    if (!have.empty())
      continue;  // the transaction rolls back: nothing changed
    tx.exec(m.sql);
    tx.exec_params("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", m.version,
                   m.name);
    tx.commit();
    applied.push_back(m.version);
  }
  // The rollup definitions (config/rollups.cpp) say what the migrations must have made.
  for (auto& name : ensure_rollup_schema(s))
    log(log_level::warn, "migrate",
        "rollup_state has '" + name + "', which no rollup definition names: its log rows "
        "accumulate until it is dropped (DELETE FROM rollup_state WHERE name = ...)");
  return applied;
}

} // namespace joule::db
