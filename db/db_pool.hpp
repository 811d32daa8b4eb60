#pragma once
// The DB pool: a bounded queue in front of N workers. A slow query occupies one worker, a
// job never waits past its timeout, a full queue answers 503 at once.

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <unordered_map>
#include <vector>

#include <caf/typed_response_promise.hpp>

#include "core/interfaces.hpp"

namespace joule::db {

/// Spawns worker number i (detached in production, a mock in tests).
using worker_factory = std::function<db_worker_actor(int index)>;

struct db_pool_config {
  int size = 4;
  std::size_t queue_limit = 2048;
};

struct db_pool_state {
  static inline const char* name = "db_pool";
  struct pending {
    db_job job;
    caf::typed_response_promise<db_answer> promise;
    caf::actor_clock::time_point deadline;
    bool answered = false;
    bool queued = true;  // false once a worker has it
  };
  std::vector<db_worker_actor> workers;
  std::vector<bool> busy;
  std::deque<std::uint64_t> queue;
  std::unordered_map<std::uint64_t, pending> jobs;
  std::uint64_t next_id = 1;
  std::uint64_t timeouts = 0;
  std::uint64_t rejected = 0;
  std::uint64_t worker_restarts = 0;
  db_pool_config cfg;
  worker_factory spawn_worker;
};

db_pool_actor::behavior_type db_pool(db_pool_actor::stateful_pointer<db_pool_state> self,
                                     db_pool_config cfg, worker_factory spawn_worker);

/// Runs `job` on the pool from outside an actor (an HTTP thread): a one-shot actor asks and
/// `then` gets the answer on a CAF thread (503 db_unavailable if the pool does not answer).
void ask_pool(caf::actor_system& sys, db_pool_actor pool, db_job job,
              std::function<void(db_answer)> then);

} // namespace joule::db
