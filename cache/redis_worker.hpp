#pragma once
// One Redis connection on its own thread (the setup code spawns it detached).

#include <chrono>
#include <memory>
#include <string>

#include "core/interfaces.hpp"
#include "cache/redis_client.hpp"

namespace joule::cache {

struct redis_worker_state {
  static inline const char* name = "redis_worker";
  std::unique_ptr<redis_client> client;
};

redis_worker_actor::behavior_type
redis_worker(redis_worker_actor::stateful_pointer<redis_worker_state> self, std::string host,
             std::uint16_t port, std::chrono::milliseconds timeout);

} // namespace joule::cache
