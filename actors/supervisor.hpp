#pragma once
// The supervisor: spawns every long-lived actor from its spec, monitors it, restarts it with
// exponential backoff when it dies abnormally, and publishes the live handle in the registry.

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/child_spec.hpp"
#include "core/interfaces.hpp"
#include "core/registry.hpp"

namespace joule {

struct supervisor_state {
  static inline const char* name = "supervisor";
  struct child {
    child_spec spec;
    running_child running;  // address null while not running
    std::uint64_t restarts = 0;
    std::chrono::milliseconds backoff{0};
    caf::actor_clock::time_point started{};
    bool restarting = false;
  };
  std::vector<child> children;
  /// Replaced children finishing their work until their grace period ends (not monitored).
  std::vector<running_child> retired;
  std::shared_ptr<service_registry> registry;
  std::chrono::milliseconds backoff_max{10000};
};

supervisor_actor::behavior_type
supervisor(supervisor_actor::stateful_pointer<supervisor_state> self, std::vector<child_spec> specs,
           std::shared_ptr<service_registry> registry, std::chrono::milliseconds backoff_max);

} // namespace joule
