#pragma once
// The telemetry writer: batches from concurrent POST /telemetry requests are grouped into one
// transaction per writer connection (group commit). Bounded: over max_pending_rows new
// batches get 503 at once instead of growing memory.

#include <deque>
#include <functional>
#include <vector>

#include <caf/typed_response_promise.hpp>

#include "config/settings.hpp"
#include "core/interfaces.hpp"
#include "db/worker_set.hpp"

namespace joule::db {

struct writer_config {
  /// Keys of POST /telemetry are remembered this long (µs).
  std::int64_t idempotency_ttl_us = 86400LL * 1000000;
  std::size_t max_pending_rows = 200000;
  std::size_t max_rows_per_commit = 50000;
};

struct telemetry_writer_state {
  static inline const char* name = "telemetry_writer";
  writer_config cfg;
  worker_set workers;
  /// A batch waiting for a writer connection and who to answer.
  struct queued {
    ingest_batch batch;
    caf::typed_response_promise<ingest_receipt> promise;
  };
  std::deque<queued> pending;
  std::size_t pending_rows = 0;
  std::uint64_t commits = 0;
  std::uint64_t rows_written = 0;
  std::uint64_t rejected_overload = 0;
};

/// Spawns the writer with ingest.writers detached workers, from ingest.* settings.
telemetry_writer_actor spawn_telemetry_writer(caf::actor_system& sys, const config::settings& s);

telemetry_writer_actor::behavior_type
telemetry_writer(telemetry_writer_actor::stateful_pointer<telemetry_writer_state> self,
                 writer_config cfg, std::function<db_worker_actor(int)> spawn_worker, int workers);

} // namespace joule::db
