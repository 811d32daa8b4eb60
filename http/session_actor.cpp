#include "http/session_actor.hpp"

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>

#include <deque>
#include <exception>
#include <string>
#include <utility>

#include "core/log.hpp"
#include "core/metrics.hpp"
#include "http/errors.hpp"
#include "http/request_log.hpp"

namespace joule::http {
namespace {

using clock_type = caf::actor_clock;

metrics::gauge& sessions_gauge() {
  static auto& g = metrics::global().get_gauge(
      "joule_http_sessions", "Open HTTP sessions (one session actor per connection)");
  return g;
}

bool is_safe(const std::string& method) {
  return method == "GET" || method == "HEAD" || method == "OPTIONS" || method == "TRACE";
}

class session_actor;

// The session actor running on this thread right now, if any: a reply made from inside it
// (synchronously in the handler, or in a `.then` callback) is applied directly instead of
// costing a message.
thread_local session_actor* running_here = nullptr;

class session_actor final : public caf::event_based_actor {
public:
  session_actor(caf::actor_config& cfg, session_config sc,
                std::shared_ptr<const handler_fn> handler, std::shared_ptr<connection_sink> sink)
    : caf::event_based_actor(cfg),
      cfg_(sc),
      handler_(std::move(handler)),
      sink_(std::move(sink)) {
    sessions_gauge().add(1);
    set_exception_handler([](caf::scheduled_actor*, std::exception_ptr& e) -> caf::error {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& x) {
        log(log_level::error, "http", std::string("session failed: ") + x.what());
      } catch (...) {
        log(log_level::error, "http", "session failed: unknown exception");
      }
      return caf::sec::runtime_error;
    });
  }

  ~session_actor() override { count_gone(); }

  const char* name() const override { return "http_session"; }

  caf::behavior make_behavior() override {
    return {
        [this](pipelined_request& in) { on_request(in); },
        [this](session_reply_atom, std::uint64_t seq, http::response& r) {
          on_answer(seq, std::move(r));
        },
        [this](session_tick_atom) { on_tick(); },
        [this](session_closed_atom) {
          connection_closed_ = true;
          quit();
        },
    };
  }

  resume_result resume(caf::execution_unit* ctx, std::size_t max_throughput) override {
    auto* outer = running_here;
    running_here = this;
    auto result = caf::event_based_actor::resume(ctx, max_throughput);
    running_here = outer;
    return result;
  }

  void on_exit() override {
    if (sink_ && !connection_closed_) {
      // Ended by an exception in a callback (or by a shutdown): answer what is answered, fail
      // the rest, and close. Nobody can tell which request the exception belonged to.
      if (queue_.empty()) {
        if (!closing_)  // else the closing answer went out and the connection closes after it
          sink_->abort();
      } else {
        while (!queue_.empty()) {
          auto& s = queue_.front();
          bool last = queue_.size() == 1;
          sink_->deliver(s.answer ? std::move(*s.answer)
                                  : error_response(500, "internal", "internal error"),
                         last);
          queue_.pop_front();
        }
      }
    }
    queue_.clear();
    sink_.reset();
    count_gone();
    caf::event_based_actor::on_exit();
  }

  // Called on this actor's thread only.
  void on_answer(std::uint64_t seq, http::response r) {
    for (auto& s : queue_) {
      if (s.seq == seq) {
        if (!s.answer)  // else: already timed out (late replies are dropped)
          s.answer = std::move(r);
        break;
      }
    }
    pump();
  }

private:
  struct slot {
    std::uint64_t seq = 0;
    http::request req;  // moved into the handler when it starts
    bool keep_alive = true;
    bool safe = true;
    bool started = false;
    bool close_after = false;
    std::optional<http::response> answer;
    clock_type::time_point deadline;
    access_entry access;  // request id and what the access line needs
  };

  void on_request(pipelined_request& in) {
    if (closing_)
      return;  // an answer that closes the connection is queued: nothing after it is answered
    slot s;
    s.seq = in.seq;
    s.keep_alive = in.keep_alive;
    s.deadline = clock().now() + cfg_.request_timeout;
    s.access.request_id = request_id_for(in.req);
    s.access.method = in.req.method;
    s.access.target = in.req.target;
    s.access.remote = in.req.remote_addr;
    s.access.peer = in.req.peer_addr;
    s.access.received = std::chrono::steady_clock::now();
    in.req.request_id = s.access.request_id;
    if (queue_.size() >= cfg_.pipeline_limit) {
      // The socket side stops reading at the bound, so this is a misbehaving sink; stay
      // bounded anyway: refuse it and close after the answers already owed.
      s.answer = error_response(503, "overloaded", "too many pipelined requests");
      s.close_after = true;
    } else if (in.refused) {
      s.answer = std::move(*in.refused);
      s.close_after = true;
    } else {
      s.safe = is_safe(in.req.method);
      s.req = std::move(in.req);
      s.close_after = !s.keep_alive;
    }
    closing_ = s.close_after;
    queue_.push_back(std::move(s));
    if (!queue_.back().answer)
      arm_timer(queue_.back().deadline);
    pump();
  }

  // The tick may come early (it was set for an older request): expire what is due, then set
  // it again for the oldest request still waiting. Deadlines grow in arrival order, so one
  // pending tick per session is enough (no timer per request).
  void on_tick() {
    timer_armed_ = false;
    auto now = clock().now();
    for (auto& s : queue_)
      if (!s.answer && s.deadline <= now)
        s.answer = error_response(503, "timeout", "the request took too long; retry later");
    pump();
    for (auto& s : queue_)
      if (!s.answer) {
        arm_timer(s.deadline);
        break;
      }
  }

  void arm_timer(clock_type::time_point at) {
    if (timer_armed_)
      return;  // a tick for an earlier deadline is pending; it re-arms for this one
    timer_armed_ = true;
    scheduled_send(caf::actor_cast<caf::actor>(this), at, session_tick_atom::value);
  }

  // Writes out the answers at the head of the queue, then starts the requests that may run.
  // Handlers may reply synchronously (re-entering through on_answer): the loop runs again
  // instead of recursing.
  void pump() {
    if (pumping_) {
      again_ = true;
      return;
    }
    pumping_ = true;
    do {
      again_ = false;
      while (!queue_.empty() && queue_.front().answer) {
        auto& s = queue_.front();
        bool close = s.close_after;
        finish_response(s.access, *s.answer);
        sink_->deliver(std::move(*s.answer), close);
        queue_.pop_front();
        if (close) {
          queue_.clear();  // nothing is queued after a closing answer; be sure
          break;
        }
      }
      bool unanswered_before = false;
      bool unsafe_before = false;
      for (std::size_t i = 0; i < queue_.size(); ++i) {
        auto& s = queue_[i];
        if (!s.started && !s.answer && (s.safe ? !unsafe_before : !unanswered_before))
          start(i);
        // `start` may have answered queue_[i]; the queue itself does not change meanwhile.
        if (!queue_[i].answer) {
          unanswered_before = true;
          unsafe_before = unsafe_before || !queue_[i].safe;
        }
      }
    } while (again_);
    pumping_ = false;
  }

  void start(std::size_t i) {
    auto& s = queue_[i];
    s.started = true;
    auto seq = s.seq;
    http::request req = std::move(s.req);
    request_scope scope{s.access.request_id};
    try {
      (*handler_)(this, std::move(req), make_reply(seq));
    } catch (const std::exception& e) {
      log(log_level::error, "http", std::string("handler threw: ") + e.what());
      on_answer(seq, error_response(500, "internal", "internal error"));
    } catch (...) {
      log(log_level::error, "http", "handler threw a non-standard exception");
      on_answer(seq, error_response(500, "internal", "internal error"));
    }
  }

  reply_fn make_reply(std::uint64_t seq) {
    // Weak: a reply parked in another actor must not keep a closed session alive.
    caf::weak_actor_ptr weak{ctrl()};
    return [weak = std::move(weak), me = id(), seq](http::response r) {
      if (running_here != nullptr && running_here->id() == me) {
        running_here->on_answer(seq, std::move(r));
        return;
      }
      if (auto strong = weak.lock())
        caf::anon_send(caf::actor_cast<caf::actor>(strong), session_reply_atom::value, seq,
                       std::move(r));
    };
  }

  void count_gone() {
    if (counted_) {
      counted_ = false;
      sessions_gauge().add(-1);
    }
  }

  session_config cfg_;
  std::shared_ptr<const handler_fn> handler_;
  std::shared_ptr<connection_sink> sink_;
  std::deque<slot> queue_;
  bool counted_ = true;
  bool closing_ = false;
  bool connection_closed_ = false;
  bool timer_armed_ = false;
  bool pumping_ = false;
  bool again_ = false;
};

} // namespace

caf::actor spawn_session(caf::actor_system& sys, session_config cfg,
                         std::shared_ptr<const handler_fn> handler,
                         std::shared_ptr<connection_sink> sink) {
  // lazy_init: the actor is first scheduled by its first message, not by the spawn.
  return sys.spawn<session_actor, caf::lazy_init>(cfg, std::move(handler), std::move(sink));
}

} // namespace joule::http
