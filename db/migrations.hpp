#pragma once
// Versioned schema migrations (db/migrations/NNNN_name.sql, embedded at build time).

#include <string>
#include <vector>

namespace joule::db {

class session;

struct migration {
  int version;
  std::string name;
  std::string sql;
};

/// Every migration in version order (generated from db/migrations/*.sql).
const std::vector<migration>& all_migrations();

/// Applies the missing ones, each in its own transaction, serialised across processes by an
/// advisory lock; harmless to run twice. Then checks that every defined rollup has its
/// state row, table and read view (ensure_rollup_schema; throws if not). Returns the
/// versions applied now.
std::vector<int> migrate(session& s);

} // namespace joule::db
