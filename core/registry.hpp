#pragma once
// Where the current handle of each long-lived actor can be found. The supervisor updates an
// entry when it restarts an actor, so users (HTTP handler, cache broker) always reach the
// live one. Thread-safe: the HTTP I/O threads read it.

#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include <caf/actor.hpp>
#include <caf/actor_cast.hpp>

namespace joule {

class service_registry {
public:
  void put(const std::string& name, caf::actor handle) {
    std::lock_guard<std::mutex> g{mtx_};
    actors_[name] = std::move(handle);
  }
  caf::actor get(const std::string& name) const {
    std::lock_guard<std::mutex> g{mtx_};
    auto it = actors_.find(name);
    return it == actors_.end() ? caf::actor{} : it->second;
  }
  template <class Handle>
  Handle get_as(const std::string& name) const {
    return caf::actor_cast<Handle>(get(name));
  }
  std::vector<std::pair<std::string, caf::actor>> all() const {
    std::lock_guard<std::mutex> g{mtx_};
    return {actors_.begin(), actors_.end()};
  }
  void clear() {
    std::lock_guard<std::mutex> g{mtx_};
    actors_.clear();
  }

private:
  mutable std::mutex mtx_;
  std::map<std::string, caf::actor> actors_;
};

} // namespace joule
