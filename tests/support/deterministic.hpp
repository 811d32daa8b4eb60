#pragma once
// CAF's deterministic test coordinator under GoogleTest: simulated time, messages delivered
// only when the test runs the scheduler. The destructor stops every actor it was given.

#include <memory>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <caf/send.hpp>

namespace joule::test {

struct deterministic {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  caf::scheduler::test_coordinator* sched = nullptr;
  std::vector<caf::actor> spawned;

  deterministic() {
    cfg.set("scheduler.policy", caf::atom("testing"));
    cfg.set("logger.verbosity", caf::atom("quiet"));
    sys = std::make_unique<caf::actor_system>(cfg);
    sched = &dynamic_cast<caf::scheduler::test_coordinator&>(sys->scheduler());
  }

  ~deterministic() {
    // A failing test must not leave actors alive: ~actor_system would wait forever.
    for (auto& a : spawned)
      caf::anon_send_exit(a, caf::exit_reason::kill);
    spawned.clear();
    sched->run();
    while (sched->trigger_timeouts() > 0)
      sched->run();
  }

  template <class Handle>
  Handle keep(Handle h) {
    spawned.push_back(caf::actor_cast<caf::actor>(h));
    return h;
  }

  void run() { sched->run(); }
};

} // namespace joule::test
