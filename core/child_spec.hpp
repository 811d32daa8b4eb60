#pragma once
// How a long-lived actor is started under supervision. Features (db, cache, rules) describe
// their actors with these; the supervisor in actors/ spawns, monitors and restarts them.

#include <functional>
#include <string>

#include <caf/actor.hpp>
#include <caf/fwd.hpp>

namespace joule {

struct child_spec {
  std::string name;  // registry key, metrics label
  std::function<caf::actor(caf::actor_system&)> spawn;
};

} // namespace joule
