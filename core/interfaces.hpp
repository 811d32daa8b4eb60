#pragma once
// The contract between Joule's folders: atoms, message types and every typed actor
// interface. Each message has a one-line comment saying what it asks and what comes back.

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>
#include <caf/replies_to.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <any>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/analytics.hpp"
#include "core/error.hpp"
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
using drop_atom = caf::atom_constant<caf::atom("drop")>;
using expire_atom = caf::atom_constant<caf::atom("expire")>;

/// Work for one DB worker, for jobs that are not a typed query of their own (features above
/// db/, maintenance). `run` executes on the worker's thread with its own connection and returns
/// the job's domain result (or an empty std::any); it throws failure_error for a domain error.
/// Database errors are classified by the worker (unavailable, timeout, conflict, internal).
struct db_job {
  std::function<std::any(db::session&)> run;
  /// Short name for metrics and logs (route or task).
  std::string label;
  /// Longest the caller is willing to wait, queue time included.
  std::chrono::milliseconds timeout{3000};
  /// Safe to run again on a fresh connection when the first one broke mid-way (reads).
  bool retry_on_disconnect = true;
  /// An analytics read a streaming standby may serve (db.read_url): the pool runs this instead
  /// of `run` on a read worker while the standby is caught up (db/replica.hpp), and falls back
  /// to `run` on the primary when it fails unavailable (unreachable, or too far behind for
  /// this read). Empty: primary only (writes, maintenance, anything not read-only).
  std::function<std::any(db::session&)> run_on_standby{};
};

/// What a successful db_job produced (`run`'s return value).
struct db_done {
  std::any value;
};

enum class cache_outcome : std::uint8_t { hit, miss, bypass };
const char* to_string(cache_outcome o);

/// What the cache broker has for a key.
struct cache_lookup {
  cache_outcome outcome = cache_outcome::bypass;
  /// True when `body` is the answer (a hit, or a miss another caller computed meanwhile).
  bool found = false;
  std::string body;
  /// No answer yet and this caller computes it: it must then `put` the body or `drop` the key
  /// (others asking for the key meanwhile wait for that, single-flight).
  bool compute = false;
};

/// What a Redis worker found.
struct redis_reply {
  enum kind_t : std::uint8_t { hit, miss, error } kind = miss;
  std::string value;
};

/// A validated POST /telemetry batch.
struct ingest_batch {
  std::vector<telemetry_row> rows;
  /// Idempotency-Key of the request ("" = none), who sent it, and the SHA-256 of the body: a
  /// retry with the same key and body is answered with the first result and writes nothing.
  std::string idempotency_key;
  std::string owner;
  std::string body_sha256;
  /// The client stops waiting at this instant (steady clock): a batch that could not commit
  /// before it is not written at all.
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
  /// The caller's households (sorted; empty: any). A reading of a device registered elsewhere
  /// (or not registered) rejects the whole batch as forbidden.
  std::vector<std::string> households{};
};

/// A stored batch.
struct ingest_receipt {
  std::uint64_t accepted = 0;
};

/// A manual refresh request ([start, end) in µs since the epoch).
struct refresh_request {
  std::int64_t start = 0;
  std::int64_t end = 0;
};

} // namespace joule

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(joule::db_job)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(joule::db_done)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(joule::cache_lookup)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(joule::redis_reply)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(joule::refresh_request)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(joule::ingest_batch)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(joule::ingest_receipt)

namespace joule {

/// One DB connection on its own thread (spawned detached).
using db_worker_actor = caf::typed_actor<
  /// Runs a job on this worker's connection; fails with an errc error (core/error.hpp).
  caf::replies_to<db_job>::with<db_done>>;

/// The bounded pool in front of the DB workers.
using db_pool_actor = caf::typed_actor<
  /// A household energy or device power series; fails not_found for an unknown id.
  caf::replies_to<series_query>::with<series_result>,
  /// A household's top devices; fails not_found for an unknown household.
  caf::replies_to<top_query>::with<top_result>,
  /// Any other job. All three fail overloaded when the queue is full, unavailable when the
  /// database is down, timeout when the deadline (db.request_deadline) passes first.
  caf::replies_to<db_job>::with<db_done>,
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
  /// Looks a key up (near cache, then Redis); see cache_lookup for who computes a miss.
  caf::replies_to<get_atom, std::string>::with<cache_lookup>,
  /// The body computed for a key after a miss, and whether it reaches still-changing buckets
  /// (short TTL); stored and handed to everyone waiting for the key.
  caf::reacts_to<put_atom, std::string, std::string, bool>,
  /// Computing the key failed: everyone waiting for it gets this error.
  caf::reacts_to<drop_atom, std::string, caf::error>,
  /// Internal: the computation of a key (flight N) took too long; release its waiters.
  caf::reacts_to<expire_atom, std::string, std::uint64_t>,
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
  /// Stores the batch whole or not at all and answers after the commit; fails invalid
  /// (unknown_devices, household_mismatch), forbidden (a device outside the batch's
  /// households), overloaded or unavailable.
  caf::replies_to<ingest_batch>::with<ingest_receipt>,
  /// Status as JSON (pending rows, commits).
  caf::replies_to<status_atom>::with<std::string>>;

/// Spawns the long-lived actors, restarts crashed ones with backoff, reports their status.
using supervisor_actor = caf::typed_actor<
  /// Internal: restart child number N now.
  caf::reacts_to<restart_atom, std::uint64_t>,
  /// Replaces the child named NAME by a fresh one (its spawn function reads the settings in
  /// effect: a SIGHUP reload); the new one is published at once, the old one stops after
  /// GRACE_MS so it can finish what it holds. False: no such child.
  caf::replies_to<restart_atom, std::string, std::uint64_t>::with<bool>,
  /// Internal: stop a child replaced earlier (its grace period is over).
  caf::reacts_to<drop_atom, caf::actor_addr>,
  /// Children, their restarts and state as JSON.
  caf::replies_to<status_atom>::with<std::string>>;

/// Keeps telemetry partitions created ahead of time.
using partition_actor = caf::typed_actor<
  /// Internal: time to check partitions.
  caf::reacts_to<tick_atom>,
  /// Status as JSON (checks, partitions created).
  caf::replies_to<status_atom>::with<std::string>>;

} // namespace joule
