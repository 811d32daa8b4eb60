#pragma once
// Keeps telemetry partitions created ahead of time, on its own DB worker.

#include <chrono>

#include "config/settings.hpp"
#include "core/interfaces.hpp"

namespace joule::db {

struct partition_config {
  std::int64_t interval_us = 86400LL * 1000000;
  int ahead = 3;
  int behind = 7;
  std::chrono::milliseconds check_interval{600000};
  /// Idempotency keys of POST /telemetry older than this are deleted at each check (µs; 0: never).
  std::int64_t idempotency_ttl_us = 0;
};

struct partition_state {
  static inline const char* name = "partitions";
  partition_config cfg;
  db_worker_actor worker;
  std::uint64_t checks = 0;
  std::uint64_t created = 0;
  std::uint64_t failures = 0;
};

/// Spawns the keeper with its own (detached) worker, from partition.* settings.
partition_actor spawn_partition_keeper(caf::actor_system& sys, const config::settings& s);

partition_actor::behavior_type
partition_keeper(partition_actor::stateful_pointer<partition_state> self, partition_config cfg,
                 db_worker_actor worker);

} // namespace joule::db
