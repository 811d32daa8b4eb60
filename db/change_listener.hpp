#pragma once
// LISTENs for joule_rollup_changes (migration 0009; or another channel, see
// change_listener_config::channel) on a dedicated connection, in its own
// detached actor, and hands every announced change to `on_change` so the process evicts what
// overlaps from memory. Notifications sent while the connection was down are lost, so after
// every (re)connect `on_reset` runs: drop everything derived from settled data. Correctness
// never depends on this actor (settled parts are keyed by version, read with their data); it
// keeps memory from holding dead entries and makes another instance's refresh visible here at
// once.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <caf/replies_to.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "config/settings.hpp"
#include "core/interfaces.hpp"

namespace pqxx {
class connection_base;
} // namespace pqxx

namespace joule::db {

/// One announced change: kind "refreshed" (rollup rows rewritten) or "pending" (a late write
/// logged below the watermark), the rollup, and the time range [lo, hi) in µs.
struct rollup_change {
  std::string kind;
  std::string rollup;
  std::int64_t lo = 0;
  std::int64_t hi = 0;
};

/// Parses a notification payload; false if malformed.
bool parse_rollup_change(const std::string& payload, rollup_change& out);

using change_listener_actor = caf::typed_actor<
    /// Internal: wait for notifications once more.
    caf::reacts_to<tick_atom>,
    /// Status as JSON (connected, notifications, reconnects).
    caf::replies_to<status_atom>::with<std::string>>;

struct change_listener_config {
  std::string url;
  /// The channel LISTENed to; other users than the rollup changes (e.g. the alert rules,
  /// joule_rule_changes) set it with `on_payload`.
  std::string channel = "joule_rollup_changes";
  /// When set, gets every payload as is (instead of `on_change`).
  std::function<void(const std::string&)> on_payload;
  std::chrono::milliseconds wait{200};         // longest block per wait
  std::chrono::milliseconds backoff_max{5000};
  std::function<void(const rollup_change&)> on_change;
  std::function<void()> on_reset;
  /// Runs on the listening connection (if connected) when the actor is told to stop: a last
  /// word to the database, e.g. an instance leaving (this actor's own thread may block).
  std::function<void(pqxx::connection_base&)> on_stop;
};

struct listening;  // the connection and its notification receiver (change_listener.cpp)

struct change_listener_state {
  static inline const char* name = "change_listener";
  change_listener_config cfg;
  std::shared_ptr<listening> conn;
  std::chrono::milliseconds backoff{0};
  std::chrono::steady_clock::time_point next_attempt{};
  std::uint64_t notifications = 0;
  std::uint64_t connects = 0;
};

/// Spawn detached: it blocks in libpq while waiting.
change_listener_actor::behavior_type
change_listener(change_listener_actor::stateful_pointer<change_listener_state> self,
                change_listener_config cfg);

change_listener_actor spawn_change_listener(caf::actor_system& sys, const config::settings& s,
                                            std::function<void(const rollup_change&)> on_change,
                                            std::function<void()> on_reset);

/// A listener on any channel (`cfg.channel`, payloads to `cfg.on_payload`); spawned detached.
change_listener_actor spawn_change_listener(caf::actor_system& sys, change_listener_config cfg);

} // namespace joule::db
