#pragma once
// How a long-lived actor is started under supervision. Each component offers a spawn function
// next to its behaviour; the wiring (actors/app.cpp) turns those into child specs and the
// supervisor (actors/supervisor.cpp) starts, monitors and restarts them.

#include <functional>
#include <string>
#include <utility>

#include <caf/actor_addr.hpp>
#include <caf/actor_system.hpp>
#include <caf/exit_reason.hpp>
#include <caf/local_actor.hpp>
#include <caf/send.hpp>

#include "core/registry.hpp"

namespace joule {

/// A started child as the supervisor sees it: typed handle erased behind three operations.
struct running_child {
  caf::actor_addr address;
  std::function<void(caf::local_actor* self)> monitor;
  std::function<void(caf::exit_reason)> stop;
};

struct child_spec {
  std::string name;  // registry name, metrics label
  /// Spawns the actor and publishes its typed handle in the registry.
  std::function<running_child(caf::actor_system&, service_registry&)> start;
  /// Withdraws the handle (the actor died; users get "starting" until the restart).
  std::function<void(service_registry&)> withdraw;
};

/// A child spec for an actor with interface Handle, spawned by `spawn(system)`.
template <class Handle>
child_spec supervise(std::string name, std::function<Handle(caf::actor_system&)> spawn) {
  child_spec c;
  c.name = name;
  c.start = [name, spawn = std::move(spawn)](caf::actor_system& sys, service_registry& reg) {
    Handle h = spawn(sys);
    reg.put<Handle>(name, h);
    running_child r;
    r.address = h.address();
    r.monitor = [h](caf::local_actor* self) { self->monitor(h); };
    r.stop = [h](caf::exit_reason why) { caf::anon_send_exit(h, why); };
    return r;
  };
  c.withdraw = [name](service_registry& reg) { reg.put<Handle>(name, Handle{}); };
  return c;
}

} // namespace joule
