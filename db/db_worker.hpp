#pragma once
// A DB worker: one actor, one connection, blocking libpqxx calls. The setup code spawns it
// detached so that its blocking never stalls the CAF scheduler.

#include <chrono>
#include <memory>
#include <string>

#include <caf/expected.hpp>

#include "config/settings.hpp"
#include "core/interfaces.hpp"

namespace joule::db {

struct db_worker_config {
  std::string url;
  std::chrono::milliseconds statement_timeout{2000};
  std::chrono::milliseconds connect_timeout{2000};
  std::chrono::milliseconds backoff_max{5000};
  std::string label = "pool";  // metrics label: pool, refresh, partitions
};

struct db_worker_state {
  static inline const char* name = "db_worker";
  std::unique_ptr<session> conn;
  /// No connection attempt before this time (reconnect backoff).
  std::chrono::steady_clock::time_point next_attempt{};
  std::chrono::milliseconds backoff{0};
  db_worker_config cfg;
};

/// A worker's connection settings from the server settings; `label` names it in metrics.
db_worker_config worker_config(const config::settings& s, const std::string& label,
                               std::chrono::milliseconds statement_timeout);

db_worker_actor::behavior_type
db_worker(db_worker_actor::stateful_pointer<db_worker_state> self, db_worker_config cfg);

/// Runs `job` on `state` synchronously (the worker's message handler; exposed for tests).
/// Database errors become errc errors: unavailable (connection), timeout (statement_timeout),
/// conflict (serialization failure, deadlock; retry), internal (anything else, logged).
caf::expected<db_done> run_job(db_worker_state& state, db_job& job);

} // namespace joule::db
