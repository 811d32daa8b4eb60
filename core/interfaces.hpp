#pragma once
// The contract between Joule's folders: atoms, message types and every typed actor
// interface. Each message has a one-line comment saying what it asks and what comes back.

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>
#include <caf/replies_to.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/telemetry_row.hpp"

namespace joule::db {
class session;
} // namespace joule::db

namespace joule {

// --- atoms (at most 10 characters each)
using status_atom = caf::atom_constant<caf::atom("status")>;
using tick_atom = caf::atom_constant<caf::atom("tick")>;
using deadline_atom = caf::atom_constant<caf::atom("deadline")>;
using refresh_atom = caf::atom_constant<caf::atom("refresh")>;
using get_atom = caf::atom_constant<caf::atom("get")>;
using put_atom = caf::atom_constant<caf::atom("put")>;
using ping_atom = caf::atom_constant<caf::atom("ping")>;
using probe_atom = caf::atom_constant<caf::atom("probe")>;
using restart_atom = caf::atom_constant<caf::atom("restart")>;

/// Outcome of one unit of database work: an HTTP-ish status, a body (JSON for API answers),
/// and whether it reflects buckets that can still change (short cache TTL).
struct db_answer {
  int status = 200;
  std::string body;
  bool live = false;
  /// Machine-readable error code when status != 200 (db_unavailable, db_timeout, ...).
  std::string error_code;
};

/// Work for one DB worker. `run` executes on the worker's thread with its own connection;
/// exceptions it throws are turned into error answers by the worker.
struct db_job {
  std::function<db_answer(db::session&)> run;
  /// Short name for metrics and logs (route or task).
  std::string label;
  /// Longest the caller is willing to wait, queue time included.
  std::chrono::milliseconds timeout{3000};
  /// Safe to run again on a fresh connection when the first one broke mid-way (reads).
  bool retry_on_disconnect = true;
};

enum class cache_outcome : std::uint8_t { hit, miss, bypass };
const char* to_string(cache_outcome o);

/// An answer that went through the cache broker.
struct cache_answer {
  db_answer answer;
  cache_outcome outcome = cache_outcome::bypass;
};

/// A read that may be answered from Redis; on a miss `job` computes it (once per key).
/// `reply` is called exactly once, on a CAF thread; it must only post work elsewhere.
struct cached_read {
  std::string key;
  db_job job;
  std::function<void(cache_answer)> reply;
};

/// What a Redis worker found.
struct redis_reply {
  enum kind_t : std::uint8_t { hit, miss, error } kind = miss;
  std::string value;
};

/// A validated POST /telemetry batch; `reply` gets 202, 422 or 503 exactly once.
struct ingest_batch {
  std::vector<telemetry_row> rows;
  std::function<void(db_answer)> reply;
};

/// A manual refresh request ([start, end) in µs since the epoch).
struct refresh_request {
  std::int64_t start = 0;
  std::int64_t end = 0;
};

} // namespace joule

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(joule::db_answer)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(joule::db_job)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(joule::cache_answer)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(joule::cached_read)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(joule::redis_reply)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(joule::refresh_request)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(joule::ingest_batch)

namespace joule {

/// One DB connection on its own thread (spawned detached).
using db_worker_actor = caf::typed_actor<
  /// Runs a job on this worker's connection; always answers (errors as status codes).
  caf::replies_to<db_job>::with<db_answer>>;

/// The bounded pool in front of the DB workers.
using db_pool_actor = caf::typed_actor<
  /// Queues a job; answers its result, 503 when the queue is full or the DB is down, or
  /// 504 when the job's timeout passes first.
  caf::replies_to<db_job>::with<db_answer>,
  /// Internal: the deadline of job N has passed.
  caf::reacts_to<deadline_atom, std::uint64_t>,
  /// Pool status as JSON (queue depth, in flight, workers).
  caf::replies_to<status_atom>::with<std::string>>;

/// One Redis connection on its own thread (spawned detached).
using redis_worker_actor = caf::typed_actor<
  /// GET key.
  caf::replies_to<get_atom, std::string>::with<redis_reply>,
  /// SET key value PX ttl_ms; answers hit on success, error otherwise.
  caf::replies_to<put_atom, std::string, std::string, std::int64_t>::with<redis_reply>,
  /// PING: used by the breaker's half-open probe.
  caf::replies_to<ping_atom>::with<redis_reply>>;

/// The cache broker: TTL + jitter, single-flight per key, circuit breaker.
using cache_actor = caf::typed_actor<
  /// Answers the read through `reply` (never through a response message).
  caf::reacts_to<cached_read>,
  /// Internal: the breaker's open period is over, probe Redis.
  caf::reacts_to<probe_atom>,
  /// Broker status as JSON (breaker state, in-flight keys).
  caf::replies_to<status_atom>::with<std::string>>;

/// One rollup's refresh schedule.
using refresh_actor = caf::typed_actor<
  /// Internal: time for the next policy cycle.
  caf::reacts_to<tick_atom>,
  /// Status as JSON (watermark, last duration, cycles).
  caf::replies_to<status_atom>::with<std::string>>;

/// The telemetry writer: group commit of concurrent batches with COPY.
using telemetry_writer_actor = caf::typed_actor<
  /// Stores the batch whole or not at all; answers through `reply` after the commit.
  caf::reacts_to<ingest_batch>,
  /// Status as JSON (pending rows, commits).
  caf::replies_to<status_atom>::with<std::string>>;

/// Spawns the long-lived actors, restarts crashed ones with backoff, reports their status.
using supervisor_actor = caf::typed_actor<
  /// Internal: restart child number N now.
  caf::reacts_to<restart_atom, std::uint64_t>,
  /// Children, their restarts and state as JSON.
  caf::replies_to<status_atom>::with<std::string>>;

/// Keeps telemetry partitions created ahead of time.
using partition_actor = caf::typed_actor<
  /// Internal: time to check partitions.
  caf::reacts_to<tick_atom>,
  /// Status as JSON (checks, partitions created).
  caf::replies_to<status_atom>::with<std::string>>;

} // namespace joule
