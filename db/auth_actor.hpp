#pragma once
// The auth actor: fills the shared token cache (core/auth.hpp) on a miss and re-validates it
// from api_tokens every `refresh_interval`, on its own DB connection, so that a token revoked
// or expired on any instance sharing the database stops working here within a few seconds —
// without a database round trip per request.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <caf/typed_response_promise.hpp>

#include "config/settings.hpp"
#include "core/auth.hpp"
#include "core/interfaces.hpp"
#include "db/db_worker.hpp"
#include "db/tokens.hpp"

namespace joule::db {

struct auth_config {
  std::shared_ptr<auth::token_cache> cache;
  /// How often every cached token is checked against the table (revocation latency).
  std::chrono::milliseconds refresh_interval{1000};
  /// How long "no such valid token" is remembered (spares the DB repeated unknown tokens).
  std::chrono::milliseconds negative_ttl{1000};
  std::size_t negative_max = 10000;
  /// Distinct hashes waiting for a lookup; beyond it new ones are answered unavailable at once
  /// (a flood of made-up tokens from many addresses must not queue without bound).
  std::size_t pending_max = 4096;
  std::chrono::milliseconds lookup_timeout{2000};
  /// last_used_at is written at most this often per token.
  std::chrono::milliseconds last_used_granularity{30000};
};

struct auth_state {
  static inline const char* name = "auth";
  auth_config cfg;
  db_worker_actor worker;
  std::unordered_map<std::string, std::vector<caf::typed_response_promise<auth::verdict>>> pending;
  std::unordered_map<std::string, std::int64_t> negative;  // hash -> forget after (µs)
  std::unordered_map<std::string, std::int64_t> flushed;   // token id -> last_used written
  bool refreshing = false;
  std::uint64_t refreshes = 0;
  std::uint64_t refresh_failures = 0;
  std::uint64_t lookups = 0;
  std::int64_t last_refresh = 0;  // µs, start of the last successful re-validation
};

auth_actor::behavior_type auth(auth_actor::stateful_pointer<auth_state> self, auth_config cfg,
                               db_worker_actor worker);

/// Spawns the actor and its detached DB worker.
auth_actor spawn_auth_actor(caf::actor_system& sys, auth_config cfg, const db_worker_config& worker);

/// The same from the settings (auth.refresh_interval, db.*), filling `cache`.
auth_actor spawn_auth_actor(caf::actor_system& sys, const config::settings& s,
                            std::shared_ptr<auth::token_cache> cache);

/// A cache entry for a verified token record, confirmed at `validated_at` (µs).
std::shared_ptr<auth::token_entry> entry_for(const std::string& hash, const token_record& r,
                                             std::int64_t validated_at);

} // namespace joule::db
