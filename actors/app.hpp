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

  std::uint16_t port() const;
  caf::actor_system& system();
  std::shared_ptr<service_registry> registry() const;
  const config::settings& settings() const;

  struct impl;

private:
  std::unique_ptr<impl> impl_;
};

} // namespace joule
