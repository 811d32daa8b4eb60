// The HTTP session actor under the deterministic scheduler, with a fake connection: answers in
// request order, the pipelining bound, per-request deadlines on simulated time (one timer per
// session, not per request), the unsafe-method barrier, throwing handlers, closing.
#include <gtest/gtest.h>

#include <map>
#include <stdexcept>

#include <caf/event_based_actor.hpp>

#include "core/metrics.hpp"
#include "http/session_actor.hpp"
#include "tests/support/deterministic.hpp"

using namespace joule;
using namespace joule::test;
using namespace std::chrono_literals;

namespace {

struct fake_sink : http::connection_sink {
  struct written {
    http::response r;
    bool close = false;
  };
  std::vector<written> out;
  bool aborted = false;
  void deliver(http::response r, bool close) override { out.push_back({std::move(r), close}); }
  void abort() override { aborted = true; }
};

// What the handler saw and the replies it parked.
struct handler_log {
  std::vector<std::string> started;  // targets, in the order the handler ran
  std::map<std::string, http::reply_fn> parked;
};

// Test-only: a helper actor the handler asks, to reply from inside a `.then` callback. (It
// takes an argument: CAF 0.17 mishandles argument-less function actors.)
caf::behavior multiplier(int factor) {
  return {[factor](int x) { return factor * x; }};
}

http::response body(std::string b) {
  http::response r;
  r.body = std::move(b);
  return r;
}

struct Session : ::testing::Test, deterministic {
  std::shared_ptr<fake_sink> sink = std::make_shared<fake_sink>();
  std::shared_ptr<handler_log> log = std::make_shared<handler_log>();
  caf::actor helper;
  caf::actor session;
  std::uint64_t next_seq = 0;

  // /now/X answers X at once; /hold/X parks its reply; /throw throws; /ask/N asks the helper
  // and answers 2N from the callback; /askthrow throws inside the callback.
  void start(std::size_t limit = 16, std::chrono::milliseconds timeout = 1000ms) {
    helper = keep(sys->spawn(multiplier, 2));
    auto h = std::make_shared<const http::handler_fn>(
        [log = log, helper = helper](caf::event_based_actor* self, http::request&& req,
                                     http::reply_fn reply) {
          log->started.push_back(req.target);
          auto arg = req.target.substr(req.target.find('/', 1) + 1);
          if (req.target.rfind("/hold/", 0) == 0) {
            log->parked[req.target] = std::move(reply);
          } else if (req.target == "/throw") {
            throw std::runtime_error("secret internal detail");
          } else if (req.target.rfind("/ask/", 0) == 0) {
            self->request(helper, 1s, std::stoi(arg))
                .then([reply](int doubled) { reply(body(std::to_string(doubled))); },
                      [reply](caf::error&) { reply(body("error")); });
          } else if (req.target == "/askthrow") {
            self->request(helper, 1s, 1)
                .then([](int) -> void { throw std::runtime_error("late failure"); },
                      [](caf::error&) {});
          } else {
            reply(body(arg));
          }
        });
    session = keep(http::spawn_session(*sys, http::session_config{limit, timeout}, h, sink));
    run();
  }

  void send(const std::string& target, const std::string& method = "GET",
            bool keep_alive = true) {
    http::pipelined_request in;
    in.seq = next_seq++;
    in.req.method = method;
    in.req.target = target;
    in.keep_alive = keep_alive;
    caf::anon_send(session, std::move(in));
    run();
  }

  // Answers a parked request from the test's thread (not the actor's): a message.
  void release(const std::string& target, std::string b) {
    auto f = std::move(log->parked.at(target));
    f(body(std::move(b)));
    run();
  }

  std::vector<std::string> bodies() const {
    std::vector<std::string> v;
    for (auto& w : sink->out)
      v.push_back(w.r.body);
    return v;
  }

  std::string code(std::size_t i) const {
    auto& b = sink->out.at(i).r.body;
    auto p = b.find("\"code\":\"");
    return p == std::string::npos ? b : b.substr(p + 8, b.find('"', p + 8) - p - 8);
  }

  std::size_t timers() const { return sched->clock().schedule().size(); }
};

using strings = std::vector<std::string>;

TEST_F(Session, AnswersLeaveInRequestOrderWhateverOrderHandlersFinishIn) {
  start();
  send("/hold/a");
  send("/hold/b");
  send("/now/c");
  EXPECT_EQ(log->started, (strings{"/hold/a", "/hold/b", "/now/c"})) << "GETs run side by side";
  EXPECT_TRUE(sink->out.empty());
  release("/hold/b", "b");
  EXPECT_TRUE(sink->out.empty()) << "b is done but a, before it, is not";
  release("/hold/a", "a");
  EXPECT_EQ(bodies(), (strings{"a", "b", "c"}));
  for (auto& w : sink->out)
    EXPECT_FALSE(w.close);
}

TEST_F(Session, ARequestBeyondThePipelineBoundIsRefusedAndTheConnectionClosesAfterTheRest) {
  start(3);
  send("/hold/1");
  send("/hold/2");
  send("/hold/3");
  send("/now/4");  // one too many: a well-behaved connection never sends it
  EXPECT_EQ(log->started.size(), 3u) << "the request beyond the bound is not run";
  EXPECT_TRUE(sink->out.empty()) << "its refusal waits for the answers before it";
  release("/hold/2", "2");
  release("/hold/1", "1");
  release("/hold/3", "3");
  ASSERT_EQ(sink->out.size(), 4u);
  EXPECT_EQ(bodies()[2], "3");
  EXPECT_EQ(sink->out[3].r.status, 503);
  EXPECT_EQ(code(3), "overloaded");
  EXPECT_TRUE(sink->out[3].close);
  EXPECT_FALSE(sink->out[2].close);
  send("/now/5");
  EXPECT_EQ(sink->out.size(), 4u) << "nothing is answered after a closing answer";
  EXPECT_EQ(log->started.size(), 3u);
}

TEST_F(Session, ARequestPastItsDeadlineIs503AndTheLateReplyIsDropped) {
  start(16, 1000ms);
  send("/hold/a");
  sched->advance_time(400ms);
  run();
  send("/now/b");  // answered at once, but it must wait for a
  sched->advance_time(599ms);
  run();
  EXPECT_TRUE(sink->out.empty()) << "1 ms before a's deadline";
  sched->advance_time(1ms);
  run();
  ASSERT_EQ(sink->out.size(), 2u);
  EXPECT_EQ(sink->out[0].r.status, 503);
  EXPECT_EQ(code(0), "timeout");
  // Retry-After, then the request id every answer carries (http/request_log.hpp).
  ASSERT_EQ(sink->out[0].r.headers.size(), 2u);
  EXPECT_EQ(sink->out[0].r.headers[0], (std::pair<std::string, std::string>{"Retry-After", "1"}));
  EXPECT_EQ(sink->out[0].r.headers[1].first, "X-Request-Id");
  EXPECT_FALSE(sink->out[0].close) << "a timeout fails the request, not the connection";
  EXPECT_EQ(sink->out[1].r.body, "b");
  release("/hold/a", "late");
  EXPECT_EQ(sink->out.size(), 2u) << "the late reply is dropped";
  send("/now/c");
  ASSERT_EQ(sink->out.size(), 3u);
  EXPECT_EQ(sink->out[2].r.body, "c");
}

TEST_F(Session, EveryRequestGetsItsOwnDeadlineFromOneTimerPerSession) {
  start(16, 1000ms);
  auto before = timers();
  send("/hold/a");
  sched->advance_time(300ms);
  run();
  send("/hold/b");
  send("/hold/c");
  EXPECT_EQ(timers(), before + 1) << "one pending tick per session, not one per request";
  sched->advance_time(700ms);  // a's deadline
  run();
  ASSERT_EQ(sink->out.size(), 1u);
  EXPECT_EQ(code(0), "timeout");
  EXPECT_EQ(timers(), before + 1) << "re-armed for b";
  release("/hold/b", "b");
  sched->advance_time(300ms);  // c's deadline (and b's, answered already)
  run();
  ASSERT_EQ(sink->out.size(), 3u);
  EXPECT_EQ(sink->out[1].r.body, "b");
  EXPECT_EQ(code(2), "timeout");
  EXPECT_EQ(timers(), before) << "nothing left to time";
}

TEST_F(Session, AThrowingHandlerFailsOnlyItsRequest) {
  start();
  send("/now/a");
  send("/throw");
  send("/now/b");
  ASSERT_EQ(sink->out.size(), 3u);
  EXPECT_EQ(sink->out[0].r.body, "a");
  EXPECT_EQ(sink->out[1].r.status, 500);
  EXPECT_EQ(code(1), "internal");
  EXPECT_EQ(sink->out[1].r.body.find("secret"), std::string::npos) << "no internals";
  EXPECT_EQ(sink->out[2].r.body, "b");
  for (auto& w : sink->out)
    EXPECT_FALSE(w.close);
  send("/now/c");
  ASSERT_EQ(sink->out.size(), 4u);
  EXPECT_EQ(sink->out[3].r.body, "c");
}

TEST_F(Session, AnUnsafeRequestWaitsForTheOnesBeforeItAndHoldsBackTheOnesAfter) {
  start();
  send("/hold/get1");
  send("/hold/post", "POST");
  send("/now/get2");
  EXPECT_EQ(log->started, (strings{"/hold/get1"}));
  release("/hold/get1", "g1");
  EXPECT_EQ(log->started, (strings{"/hold/get1", "/hold/post"}));
  EXPECT_EQ(bodies(), (strings{"g1"}));
  release("/hold/post", "p");
  EXPECT_EQ(log->started, (strings{"/hold/get1", "/hold/post", "/now/get2"}));
  EXPECT_EQ(bodies(), (strings{"g1", "p", "get2"}));
}

TEST_F(Session, HandlersMayAskOtherActorsAndReplyFromTheCallback) {
  start();
  send("/ask/21");
  send("/now/x");
  EXPECT_EQ(bodies(), (strings{"42", "x"}));
}

TEST_F(Session, AnExceptionInACallbackEndsTheSessionAndFailsWhatIsUnanswered) {
  start();
  send("/now/a");
  send("/hold/b");
  send("/askthrow");
  ASSERT_EQ(sink->out.size(), 3u);
  EXPECT_EQ(sink->out[0].r.body, "a");
  EXPECT_EQ(code(1), "internal");
  EXPECT_EQ(code(2), "internal");
  EXPECT_FALSE(sink->out[1].close);
  EXPECT_TRUE(sink->out[2].close) << "the connection closes after the last answer";
  release("/hold/b", "late");  // the session is gone: nothing happens
  EXPECT_EQ(sink->out.size(), 3u);
}

TEST_F(Session, ConnectionCloseAndRefusedRequestsAreAnsweredInOrderThenClose) {
  start();
  send("/hold/a");
  http::pipelined_request bad;
  bad.seq = next_seq++;
  bad.keep_alive = false;
  bad.refused = body("{\"error\":{\"code\":\"header_too_large\",\"message\":\"x\"}}");
  bad.refused->status = 431;
  caf::anon_send(session, std::move(bad));
  run();
  EXPECT_TRUE(sink->out.empty());
  release("/hold/a", "a");
  ASSERT_EQ(sink->out.size(), 2u);
  EXPECT_FALSE(sink->out[0].close);
  EXPECT_EQ(sink->out[1].r.status, 431);
  EXPECT_TRUE(sink->out[1].close);

  auto other = std::make_shared<fake_sink>();
  sink = other;
  start();
  send("/now/last", "GET", false);  // Connection: close
  ASSERT_EQ(other->out.size(), 1u);
  EXPECT_TRUE(other->out[0].close);
}

TEST_F(Session, TheSessionEndsWithItsConnectionAndTheGaugeFollows) {
  auto& gauge = metrics::global().get_gauge("joule_http_sessions", "");
  auto before = gauge.value();
  start();
  EXPECT_EQ(gauge.value(), before + 1);
  send("/hold/a");
  caf::anon_send(session, http::session_closed_atom::value);
  run();
  EXPECT_EQ(gauge.value(), before);
  EXPECT_TRUE(sink->out.empty()) << "nothing is written to a closed connection";
  EXPECT_FALSE(sink->aborted);
  release("/hold/a", "late");  // harmless
  EXPECT_TRUE(sink->out.empty());
}

} // namespace
