#include "db/change_listener.hpp"

#include <sstream>
#include <thread>

#include <caf/actor_system.hpp>
#include <pqxx/pqxx>

#include "core/log.hpp"
#include "core/metrics.hpp"
#include "db/session.hpp"

namespace joule::db {
namespace {

using self_ptr = change_listener_actor::stateful_pointer<change_listener_state>;

class receiver : public pqxx::notification_receiver {
public:
  receiver(pqxx::connection_base& c, change_listener_state& st)
    : pqxx::notification_receiver(c, st.cfg.channel), st_(st) {}
  void operator()(const std::string& payload, int) override {
    ++st_.notifications;
    if (st_.cfg.on_payload) {
      st_.cfg.on_payload(payload);
      return;
    }
    metrics::global()
        .get_counter("joule_live_changes_total", "Rollup changes announced by NOTIFY and evicted")
        .inc();
    rollup_change c;
    if (!parse_rollup_change(payload, c)) {
      log(log_level::warn, "live", "ignored malformed change notification");
      return;
    }
    if (st_.cfg.on_change)
      st_.cfg.on_change(c);
  }

private:
  change_listener_state& st_;
};

} // namespace

// The receiver must live exactly as long as its connection: both in one holder.
struct listening {
  pqxx::connection conn;
  receiver rec;
  listening(const std::string& url, change_listener_state& st) : conn(url), rec(conn, st) {}
};

namespace {

void drop(self_ptr self) { self->state.conn.reset(); }

bool ensure(self_ptr self) {
  auto& st = self->state;
  if (st.conn)
    return true;
  auto now = std::chrono::steady_clock::now();
  if (now < st.next_attempt)
    return false;
  try {
    auto l = std::make_shared<listening>(
        with_options(st.cfg.url, std::chrono::milliseconds{0}, std::chrono::milliseconds{2000}),
        st);
    // LISTEN is sent by the receiver's registration; one round trip proves it took.
    pqxx::nontransaction{l->conn}.exec("SELECT 1");
    st.conn = std::move(l);
    st.backoff = std::chrono::milliseconds{0};
    ++st.connects;
    // Whatever was announced while nobody listened is unknown: start clean.
    if (st.cfg.on_reset)
      st.cfg.on_reset();
    if (st.connects > 1)
      log(log_level::info, "live", "change listener reconnected");
    return true;
  } catch (const std::exception& e) {
    st.backoff = st.backoff.count() == 0 ? std::chrono::milliseconds{100}
                                         : std::min(st.cfg.backoff_max, st.backoff * 2);
    st.next_attempt = now + st.backoff;
    log(log_level::warn, "live", std::string("change listener cannot connect: ") + e.what());
    return false;
  }
}

void wait_once(self_ptr self) {
  auto& st = self->state;
  if (!ensure(self)) {
    // Not connected: sleep a little (this actor is detached) instead of spinning.
    std::this_thread::sleep_for(std::min(st.cfg.wait, st.backoff));
    return;
  }
  try {
    auto us = std::chrono::duration_cast<std::chrono::microseconds>(st.cfg.wait).count();
    st.conn->conn.await_notification(static_cast<long>(us / 1000000),
                                     static_cast<long>(us % 1000000));
    st.conn->conn.get_notifs();
  } catch (const std::exception& e) {
    log(log_level::warn, "live", std::string("change listener lost its connection: ") + e.what());
    drop(self);
    st.next_attempt = std::chrono::steady_clock::now() + std::chrono::milliseconds{100};
    st.backoff = std::chrono::milliseconds{100};
    // Nothing is announced until we listen again: memory derived from settled data cannot
    // be kept in step meanwhile.
    if (st.cfg.on_reset)
      st.cfg.on_reset();
  }
}

} // namespace

bool parse_rollup_change(const std::string& payload, rollup_change& out) {
  std::istringstream in{payload};
  if (!(in >> out.kind >> out.rollup >> out.lo >> out.hi))
    return false;
  return out.kind == "refreshed" || out.kind == "pending";
}

change_listener_actor::behavior_type change_listener(self_ptr self, change_listener_config cfg) {
  self->state.cfg = std::move(cfg);
  self->set_exit_handler([self](caf::exit_msg& msg) {
    auto& st = self->state;
    if (st.cfg.on_stop && st.conn) {
      try {
        st.cfg.on_stop(st.conn->conn);
      } catch (const std::exception& e) {
        log(log_level::warn, "live", std::string("change listener: last word failed: ") + e.what());
      }
    }
    self->quit(msg.reason);
  });
  self->send(self, tick_atom::value);
  return {
      [self](tick_atom) {
        wait_once(self);
        self->send(self, tick_atom::value);
      },
      [self](status_atom) -> std::string {
        auto& st = self->state;
        return std::string("{\"connected\":") + (st.conn ? "true" : "false") +
               ",\"notifications\":" + std::to_string(st.notifications) +
               ",\"connects\":" + std::to_string(st.connects) + "}";
      },
  };
}

change_listener_actor spawn_change_listener(caf::actor_system& sys, const config::settings& s,
                                            std::function<void(const rollup_change&)> on_change,
                                            std::function<void()> on_reset) {
  change_listener_config cfg;
  cfg.url = s.db_url;
  cfg.backoff_max = s.db_reconnect_backoff_max;
  cfg.on_change = std::move(on_change);
  cfg.on_reset = std::move(on_reset);
  return sys.spawn<caf::detached>(change_listener, std::move(cfg));
}

change_listener_actor spawn_change_listener(caf::actor_system& sys, change_listener_config cfg) {
  return sys.spawn<caf::detached>(change_listener, std::move(cfg));
}

} // namespace joule::db
