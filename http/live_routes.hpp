#pragma once
// Live reads of device answers (issue 9): device power and top devices joined from a settled
// part (rollup rows below the device 1 min watermark, held in memory and Redis under the
// versions of their hours) and a live part from the live tail's snapshot, on the session
// actor's own thread, as household energy is (analytics_routes.cpp, live_energy).
//
// A settled part is read from the database once, up to where the snapshot's device buckets
// start, and then carried forward in memory: every poll extends it with the snapshot's
// rollup buckets the device 1 min watermark has passed since (exact rows, at the versions the
// snapshot read), so a subject polled more often than every few minutes costs no PostgreSQL
// round trip at all, although its window and the watermark move every minute.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "core/auth.hpp"
#include "db/analytics.hpp"
#include "db/live_tail.hpp"
#include "http/routes.hpp"

namespace joule::http {

/// How old a snapshot may be to be joined with (older: the database answers).
std::chrono::steady_clock::duration live_max_age(const route_env& env);
/// How long a settled part stays in memory (its key names the versions of its rows).
std::chrono::milliseconds settled_ttl(const route_env& env);
/// Lowers `fresh` to `cap` when there is one.
void lower_to(std::int64_t& fresh, std::optional<std::int64_t> cap);

/// The memo key of a live answer of `route` to `query` (every parameter its body depends on)
/// on `snap`, or empty when the answer memo is off.
std::string answer_key(const route_env& env, const char* route, const db::live_snapshot& snap,
                       const std::string& query);
/// Replies the answer memoized under `key` (X-Cache: hit) and returns true, or returns false.
/// Call only where the live path has decided to answer from the snapshot.
bool answer_from_memo(caf::event_based_actor* self, const route_env& env, const std::string& key,
                      reply_fn& reply);
/// Keeps a live 200 answer's body under `key` (nothing for an empty key).
void keep_answer(caf::event_based_actor* self, const route_env& env, const std::string& key,
                 const std::string& body);

/// Answers a device power series from `snap` (steps 1m and 5m) and returns true, or returns
/// false without replying when the snapshot cannot answer it exactly (other steps, a device it
/// does not know or `who` may not see, a window older than its versions, a pending late write
/// touching the device's household): the caller then asks the database as before.
bool live_power(caf::event_based_actor* self, const std::shared_ptr<const route_env>& env,
                const db::series_query& q, const std::string& step, const auth::identity& who,
                const db::live_snapshot_ptr& snap, reply_fn& reply);

/// Answers top devices of a household from `snap` and returns true, or false as live_power.
bool live_top(caf::event_based_actor* self, const std::shared_ptr<const route_env>& env,
              const db::top_query& q, const db::live_snapshot_ptr& snap, reply_fn& reply);

} // namespace joule::http
