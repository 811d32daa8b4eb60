#pragma once
// The DB pool: a bounded queue in front of N workers. A slow query occupies one worker, a
// job never waits past its timeout, a full queue answers 503 at once.

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <unordered_map>
#include <vector>

#include <caf/expected.hpp>
#include <caf/typed_response_promise.hpp>

#include "core/interfaces.hpp"
#include "db/analytics.hpp"
#include "db/db_worker.hpp"
#include "db/replica.hpp"
#include "db/worker_set.hpp"

namespace joule::db {

/// Spawns worker number i (detached in production, a mock in tests).
using worker_factory = std::function<db_worker_actor(int index)>;

struct db_pool_config {
  int size = 4;
  std::size_t queue_limit = 2048;
  /// Deadline of the typed analytics queries (db.request_deadline); db_jobs carry their own.
  std::chrono::milliseconds query_deadline{3000};
  /// Rollups + raw tail (normal) or raw rows only (api.read_raw, the baseline).
  read_mode mode = read_mode::rollups;
  /// Watermarks known in-process (lets an analytics answer take one round trip); may be null.
  std::shared_ptr<watermark_board> watermarks;
  /// Read workers on the streaming standby (db.read_url; 0: none) and whether it is usable
  /// now (its lag monitor's verdict). Jobs with `run_on_standby` go there while it is.
  int read_size = 0;
  worker_factory spawn_reader;
  std::shared_ptr<replica_state> replica;
};

struct db_pool_state {
  static inline const char* name = "db_pool";
  struct pending {
    db_job job;
    /// Delivers the outcome to whoever asked (a typed response promise underneath).
    std::function<void(caf::expected<db_done>)> complete;
    caf::actor_clock::time_point deadline;
    bool answered = false;
    bool queued = true;  // false once a worker has it
    bool standby = false;  // routed to the read workers (until it falls back)
    /// An analytics read (counted in joule_db_reads_total), also when no standby is set up.
    bool read = false;
  };
  worker_set workers;
  std::deque<std::uint64_t> queue;
  worker_set readers;
  std::deque<std::uint64_t> read_queue;
  std::unordered_map<std::uint64_t, pending> jobs;
  /// Jobs waiting in `queue` or `read_queue`: the deques also hold the ids of jobs that timed
  /// out while queued (skipped when they reach the front), which must not count against
  /// db.queue_limit (with every read worker stuck on a vanished standby they never would).
  std::size_t waiting = 0;
  std::uint64_t next_id = 1;
  std::uint64_t timeouts = 0;
  std::uint64_t rejected = 0;
  std::uint64_t worker_restarts = 0;
  db_pool_config cfg;
  worker_factory spawn_worker;
};

db_pool_actor::behavior_type db_pool(db_pool_actor::stateful_pointer<db_pool_state> self,
                                     db_pool_config cfg, worker_factory spawn_worker);

/// Spawns the pool with `cfg.size` detached workers (one connection each).
db_pool_actor spawn_db_pool(caf::actor_system& sys, db_pool_config cfg,
                            const db_worker_config& worker);
/// The same from the server settings (db.pool_size, db.queue_limit, db.request_deadline,
/// db.statement_timeout, api.read_raw); with `replica` (db.read_url set) also db.pool_size
/// read workers on the standby.
db_pool_actor spawn_db_pool(caf::actor_system& sys, const config::settings& s,
                            std::shared_ptr<watermark_board> watermarks,
                            std::shared_ptr<replica_state> replica = nullptr);

} // namespace joule::db
