#include "actors/supervisor.hpp"

#include "core/log.hpp"
#include "core/metrics.hpp"

namespace joule {
namespace {

using self_ptr = supervisor_actor::stateful_pointer<supervisor_state>;

void start_child(self_ptr self, std::size_t i) {
  auto& c = self->state.children[i];
  c.running = c.spec.start(self->system(), *self->state.registry);
  c.started = self->clock().now();
  c.restarting = false;
  c.running.monitor(self);
}

} // namespace

supervisor_actor::behavior_type supervisor(self_ptr self, std::vector<child_spec> specs,
                                           std::shared_ptr<service_registry> registry,
                                           std::chrono::milliseconds backoff_max) {
  auto& st = self->state;
  st.registry = std::move(registry);
  st.backoff_max = backoff_max;
  for (auto& s : specs)
    {
    supervisor_state::child c;
    c.spec = std::move(s);
    st.children.push_back(std::move(c));
  }
  for (std::size_t i = 0; i < st.children.size(); ++i)
    start_child(self, i);
  self->set_down_handler([self](caf::down_msg& dm) {
    auto& st = self->state;
    for (std::size_t i = 0; i < st.children.size(); ++i) {
      auto& c = st.children[i];
      if (!c.running.address || c.running.address != dm.source)
        continue;
      c.running = running_child{};
      // Until the restart, users get a quick "restarting" answer instead of a dead handle.
      c.spec.withdraw(*st.registry);
      if (dm.reason == caf::exit_reason::user_shutdown || dm.reason == caf::exit_reason::normal)
        return;  // stopped on purpose
      // A child that ran a while before dying starts over with a short backoff.
      if (self->clock().now() - c.started > std::chrono::minutes(1))
        c.backoff = std::chrono::milliseconds{0};
      c.backoff = c.backoff.count() == 0 ? std::chrono::milliseconds{100}
                                         : std::min(st.backoff_max, c.backoff * 2);
      ++c.restarts;
      c.restarting = true;
      metrics::global()
          .get_counter("joule_actor_restarts_total", "Actors restarted by their supervisor",
                       metrics::label("actor", c.spec.name))
          .inc();
      log(log_level::warn, "supervisor",
          c.spec.name + " died (" + self->system().render(dm.reason) + "), restart in " +
              std::to_string(c.backoff.count()) + " ms");
      self->delayed_send(self, c.backoff, restart_atom::value, static_cast<std::uint64_t>(i));
      return;
    }
  });
  // Children stop in reverse order of their start, before the supervisor's state is gone.
  self->set_exit_handler([self](caf::exit_msg& msg) {
    auto& ch = self->state.children;
    for (auto& r : self->state.retired)
      r.stop(caf::exit_reason::user_shutdown);
    for (auto it = ch.rbegin(); it != ch.rend(); ++it)
      if (it->running.address)
        it->running.stop(caf::exit_reason::user_shutdown);
    self->quit(msg.reason);
  });
  return {
      [self](restart_atom, const std::string& name, std::uint64_t grace_ms) {
        auto& st = self->state;
        for (std::size_t i = 0; i < st.children.size(); ++i) {
          auto& c = st.children[i];
          if (c.spec.name != name)
            continue;
          if (c.running.address) {
            // Forget the old one (its end is no crash) and let it finish what it holds.
            self->demonitor(c.running.address);
            auto old = c.running.address;
            st.retired.push_back(std::move(c.running));
            self->delayed_send(self, std::chrono::milliseconds(grace_ms), drop_atom::value,
                               old);
          }
          start_child(self, i);  // publishes the new handle in the registry
          log(log_level::info, "supervisor", name + " replaced (new settings)");
          return true;
        }
        return false;
      },
      [self](drop_atom, const caf::actor_addr& old) {
        auto& r = self->state.retired;
        for (auto it = r.begin(); it != r.end(); ++it)
          if (it->address == old) {
            it->stop(caf::exit_reason::user_shutdown);
            r.erase(it);
            return;
          }
      },
      [self](restart_atom, std::uint64_t i) {
        if (i < self->state.children.size() && self->state.children[i].restarting)
          start_child(self, i);
      },
      [self](status_atom) -> std::string {
        std::string out = "{";
        bool first = true;
        for (auto& c : self->state.children) {
          out += (first ? "\"" : ",\"") + c.spec.name + "\":{\"running\":" +
                 (c.running.address ? "true" : "false") + ",\"restarts\":" + std::to_string(c.restarts) +
                 "}";
          first = false;
        }
        return out + "}";
      },
  };
}

} // namespace joule
