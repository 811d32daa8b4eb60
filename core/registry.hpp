#pragma once
// Where the current handle of each long-lived actor can be found, by its typed interface. The
// supervisor publishes a handle when it (re)starts an actor and withdraws it when the actor
// dies, so users (HTTP routes, cache broker, alerts) always reach the live one or get an empty
// handle (answer "starting"). Thread-safe: session actors on any CAF thread read it.

#include <algorithm>
#include <any>
#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <typeindex>
#include <utility>
#include <vector>

#include <caf/event_based_actor.hpp>

#include "core/interfaces.hpp"

namespace joule {

/// Asks one actor for its status JSON from `self`; `done` gets "null" when it does not answer.
using status_request =
    std::function<void(caf::event_based_actor* self, std::function<void(std::string)> done)>;

class service_registry {
public:
  /// Publishes `handle` under `name` (several actors may share an interface, e.g. one refresh
  /// actor per rollup); a null handle withdraws it.
  template <class Handle>
  void put(const std::string& name, Handle handle) {
    std::lock_guard<std::mutex> g{mtx_};
    auto key = std::make_pair(std::type_index(typeid(Handle)), name);
    if (!handle) {
      entries_.erase(key);
      return;
    }
    status_request status = [handle](caf::event_based_actor* self,
                                     std::function<void(std::string)> done) {
      self->request(handle, std::chrono::seconds(2), status_atom::value)
          .then([done](std::string& s) { done(std::move(s)); },
                [done](caf::error&) { done("null"); });
    };
    entries_[key] = entry{std::any(std::move(handle)), std::move(status)};
  }

  /// The live actor with this interface (the first by name when there are several), or a null
  /// handle while it is (re)starting.
  template <class Handle>
  Handle get() const {
    std::lock_guard<std::mutex> g{mtx_};
    auto it = entries_.lower_bound(std::make_pair(std::type_index(typeid(Handle)), std::string{}));
    if (it == entries_.end() || it->first.first != std::type_index(typeid(Handle)))
      return Handle{};
    return std::any_cast<Handle>(it->second.handle);
  }

  /// The live actor with this interface and name, or a null handle.
  template <class Handle>
  Handle get(const std::string& name) const {
    std::lock_guard<std::mutex> g{mtx_};
    auto it = entries_.find(std::make_pair(std::type_index(typeid(Handle)), name));
    return it == entries_.end() ? Handle{} : std::any_cast<Handle>(it->second.handle);
  }

  /// Every published actor's name and status request (for /admin/status), ordered by name.
  std::vector<std::pair<std::string, status_request>> status_sources() const {
    std::lock_guard<std::mutex> g{mtx_};
    std::vector<std::pair<std::string, status_request>> out;
    for (auto& [key, e] : entries_)
      out.emplace_back(key.second, e.status);
    std::sort(out.begin(), out.end(),
              [](auto& a, auto& b) { return a.first < b.first; });
    return out;
  }

  void clear() {
    std::lock_guard<std::mutex> g{mtx_};
    entries_.clear();
  }

private:
  struct entry {
    std::any handle;
    status_request status;
  };
  mutable std::mutex mtx_;
  std::map<std::pair<std::type_index, std::string>, entry> entries_;
};

} // namespace joule
