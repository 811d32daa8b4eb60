#pragma once
// The whole server as one object: migrations, partitions, actor system, supervision tree and
// HTTP listener. `joule serve` and the integration tests both run it.

#include <cstdint>
#include <memory>

#include "config/settings.hpp"

namespace caf {
class actor_system;
} // namespace caf

namespace joule {

class service_registry;

/// log.level, log.format and log.access to the process's logger.
void apply_log_settings(const config::settings& s);

class app {
public:
  explicit app(config::settings s);
  ~app();
  app(const app&) = delete;
  app& operator=(const app&) = delete;

  /// Migrates, creates partitions, spawns the actors and starts listening. Throws with a
  /// readable message on failure (database unreachable, port taken).
  void start();
  /// Graceful: stop accepting, drain requests, stop actors in reverse order.
  void stop();

  /// Applies the live keys of `next` (config::live_keys(): log level/format/access, rate
  /// limits, DB pool and cache settings; the pool and the cache broker are replaced, the old
  /// ones finish what they hold) and logs every other changed key as needing a restart.
  /// Returns an error (and changes nothing) when the result is inconsistent; empty on success.
  std::string reload(const config::settings& next);

  /// The settings in effect (start-up values plus reloads).
  config::settings current_settings() const;

  std::uint16_t port() const;
  caf::actor_system& system();
  std::shared_ptr<service_registry> registry() const;
  const config::settings& settings() const;

  struct impl;

private:
  std::unique_ptr<impl> impl_;
};

} // namespace joule
