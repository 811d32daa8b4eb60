// The HTTP listener and its session actors over real TCP, with test handlers (no database):
// pipelining order and back-pressure, a throwing handler, request deadlines, the sessions
// gauge, 431/400, slow heads, the connection cap, accept back-off, graceful stop.
#include <gtest/gtest.h>

#include <dirent.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>

#include <rapidjson/document.h>

#include "core/metrics.hpp"
#include "http/server.hpp"
#include "tests/support/raw_http.hpp"

using namespace joule;
using namespace joule::test;
using namespace std::chrono_literals;

namespace {

// Replies parked by GET /hold/..., released by the test (from its own thread, i.e. not the
// session actor's: the reply travels as a message).
struct parked {
  std::mutex mtx;
  std::vector<std::pair<std::string, http::reply_fn>> replies;
  std::atomic<int> calls{0};

  std::size_t size() {
    std::lock_guard<std::mutex> g{mtx};
    return replies.size();
  }
  // Answers the parked request whose target is `target` with its target as body.
  bool release(const std::string& target) {
    http::reply_fn f;
    {
      std::lock_guard<std::mutex> g{mtx};
      for (auto& [t, r] : replies)
        if (t == target && r) {
          f = std::move(r);
          r = nullptr;
          break;
        }
    }
    if (!f)
      return false;
    http::response resp;
    resp.body = "{\"target\":\"" + target + "\"}";
    f(std::move(resp));
    return true;
  }
};

rapidjson::Document parse_json(const std::string& body) {
  rapidjson::Document d;
  d.Parse(body.c_str());
  EXPECT_FALSE(d.HasParseError()) << "not JSON: " << body;
  return d;
}

double sessions() {
  return metrics::global().get_gauge("joule_http_sessions", "").value();
}

std::uint64_t accept_errors() {
  return metrics::global().get_counter("joule_http_accept_errors_total", "").value();
}

template <class Pred>
bool eventually(Pred p, std::chrono::milliseconds within = 5s) {
  auto until = std::chrono::steady_clock::now() + within;
  while (std::chrono::steady_clock::now() < until) {
    if (p())
      return true;
    std::this_thread::sleep_for(5ms);
  }
  return p();
}

std::string error_code_of(const http_result& r) {
  auto d = parse_json(r.body);
  if (!d.IsObject() || !d.HasMember("error") || !d["error"].HasMember("code"))
    return "<no error code in " + r.body + ">";
  return d["error"]["code"].GetString();
}

class Server : public ::testing::Test {
protected:
  // Default configuration: CAF's logger is compiled out of Debian's build anyway.
  Server() : sys_(std::make_unique<caf::actor_system>(cfg_)) {}
  ~Server() override {
    srv_.reset();  // before the actor system: closing connections ends the sessions
    sys_.reset();
  }

  void start(http::server_config sc = {}) {
    sc.host = "127.0.0.1";
    sc.port = 0;
    srv_ = std::make_unique<http::server>(*sys_, sc, handler());
    port_ = srv_->start();
  }

  // /echo/...: answers at once with the target; /hold/...: parks the reply; /throw: throws;
  // POST /post: echoes the body.
  http::handler_fn handler() {
    return [held = held_](caf::event_based_actor*, http::request&& req, http::reply_fn reply) {
      ++held->calls;
      if (req.target.rfind("/hold/", 0) == 0) {
        std::lock_guard<std::mutex> g{held->mtx};
        held->replies.emplace_back(req.target, std::move(reply));
        return;
      }
      if (req.target == "/throw")
        throw std::runtime_error("secret internal detail");
      http::response r;
      if (req.target.rfind("/echo/", 0) == 0) {
        r.body = "{\"target\":\"" + req.target + "\",\"remote\":\"" + req.remote_addr +
                 "\",\"x_test\":\"" + std::string(req.header("x-TEST")) + "\"}";
      } else if (req.method == "POST" && req.target == "/post") {
        r.body = req.body;
      } else {
        r.status = 404;
        r.body = "{\"error\":{\"code\":\"not_found\",\"message\":\"no such endpoint\"}}";
      }
      reply(std::move(r));
    };
  }

  caf::actor_system_config cfg_;
  std::unique_ptr<caf::actor_system> sys_;
  std::unique_ptr<http::server> srv_;
  std::shared_ptr<parked> held_ = std::make_shared<parked>();
  std::uint16_t port_ = 0;
};

TEST_F(Server, PipelinedRequestsAreAnsweredInRequestOrderWhateverOrderTheyFinishIn) {
  start();
  raw_connection c{port_};
  ASSERT_TRUE(c.connected());
  std::string all;
  for (int i = 0; i < 16; ++i)
    all += get_request((i % 2 ? "/hold/" : "/echo/") + std::to_string(i));
  ASSERT_TRUE(c.send(all));
  ASSERT_TRUE(eventually([&] { return held_->size() == 8; }));
  // Release the parked ones last to first: the answers must still come in request order.
  for (int i = 15; i >= 1; i -= 2)
    ASSERT_TRUE(held_->release("/hold/" + std::to_string(i)));
  for (int i = 0; i < 16; ++i) {
    auto r = c.read_response();
    ASSERT_EQ(r.status, 200) << "answer " << i;
    auto d = parse_json(r.body);
    EXPECT_EQ(std::string(d["target"].GetString()),
              (i % 2 ? "/hold/" : "/echo/") + std::to_string(i));
  }
}

TEST_F(Server, AThrowingHandlerFailsOnlyItsRequestAndTheConnectionGoesOn) {
  start();
  raw_connection c{port_};
  ASSERT_TRUE(c.send(get_request("/echo/a") + get_request("/throw") + get_request("/echo/b")));
  auto a = c.read_response();
  auto t = c.read_response();
  auto b = c.read_response();
  EXPECT_EQ(a.status, 200);
  EXPECT_EQ(t.status, 500);
  EXPECT_EQ(error_code_of(t), "internal");
  EXPECT_EQ(t.body.find("secret"), std::string::npos) << "no internals in the answer: " << t.body;
  EXPECT_EQ(b.status, 200);
  EXPECT_NE(b.body.find("/echo/b"), std::string::npos);
  // The same connection keeps working afterwards.
  ASSERT_TRUE(c.send(get_request("/echo/c")));
  auto next = c.read_response();
  EXPECT_EQ(next.status, 200);
  EXPECT_NE(next.body.find("/echo/c"), std::string::npos);
}

TEST_F(Server, HandlersSeeHeadersCaseInsensitivelyAndThePeerAddress) {
  start();
  raw_connection c{port_};
  ASSERT_TRUE(c.send(get_request("/echo/h", "X-Test: yes\r\n")));
  auto r = c.read_response();
  ASSERT_EQ(r.status, 200);
  auto d = parse_json(r.body);
  EXPECT_EQ(std::string(d["x_test"].GetString()), "yes");
  EXPECT_EQ(std::string(d["remote"].GetString()), "127.0.0.1");
}

TEST_F(Server, ARequestPastItsDeadlineIs503AndTheLateReplyIsDropped) {
  http::server_config sc;
  sc.request_timeout = 300ms;
  start(sc);
  raw_connection c{port_};
  ASSERT_TRUE(c.send(get_request("/hold/slow") + get_request("/echo/after")));
  auto slow = c.read_response();
  EXPECT_EQ(slow.status, 503);
  EXPECT_EQ(error_code_of(slow), "timeout");
  EXPECT_EQ(slow.headers["retry-after"], "1");
  EXPECT_GE(slow.seconds, 0.25);
  auto after = c.read_response();
  EXPECT_EQ(after.status, 200);
  EXPECT_TRUE(held_->release("/hold/slow"));  // too late: nothing more is written
  ASSERT_TRUE(c.send(get_request("/echo/next")));
  auto next = c.read_response();
  EXPECT_EQ(next.status, 200);
  EXPECT_NE(next.body.find("/echo/next"), std::string::npos) << next.body;
}

TEST_F(Server, AtPipelineLimitTheServerStopsReadingUntilAnswersAreWritten) {
  http::server_config sc;
  sc.pipeline_limit = 4;
  start(sc);
  raw_connection c{port_};
  std::string all;
  for (int i = 0; i < 10; ++i)
    all += get_request("/hold/" + std::to_string(i));
  ASSERT_TRUE(c.send(all));
  ASSERT_TRUE(eventually([&] { return held_->size() == 4; }));
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(held_->size(), 4u) << "only pipeline_limit requests are read ahead";
  EXPECT_EQ(srv_->in_flight(), 4);
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(eventually([&] { return held_->release("/hold/" + std::to_string(i)); }))
        << "request " << i << " was never read";
    auto r = c.read_response();
    ASSERT_EQ(r.status, 200);
    EXPECT_NE(r.body.find("/hold/" + std::to_string(i) + "\""), std::string::npos) << r.body;
    EXPECT_LE(held_->size(), static_cast<std::size_t>(i) + 1 + 4);
  }
}

TEST_F(Server, UnsafeRequestsWaitForTheOnesBeforeThemAndHoldBackTheOnesAfter) {
  start();
  raw_connection c{port_};
  std::string post = "POST /post HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}";
  ASSERT_TRUE(c.send(get_request("/hold/first") + post + get_request("/echo/third")));
  ASSERT_TRUE(eventually([&] { return held_->size() == 1; }));
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(held_->calls.load(), 1) << "the POST waits for the GET before it, the GET after it "
                                       "waits for the POST";
  ASSERT_TRUE(held_->release("/hold/first"));
  EXPECT_EQ(c.read_response().status, 200);
  auto p = c.read_response();
  EXPECT_EQ(p.status, 200);
  EXPECT_EQ(p.body, "{}");
  EXPECT_EQ(c.read_response().status, 200);
  EXPECT_EQ(held_->calls.load(), 3);
}

TEST_F(Server, SessionsGaugeCountsOpenConnectionsAndReturnsToZero) {
  start();
  const double before = sessions();
  {
    std::vector<std::unique_ptr<raw_connection>> cs;
    for (int i = 0; i < 5; ++i) {
      cs.push_back(std::make_unique<raw_connection>(port_));
      ASSERT_TRUE(cs.back()->send(get_request("/echo/" + std::to_string(i))));
      ASSERT_EQ(cs.back()->read_response().status, 200);
    }
    EXPECT_EQ(sessions(), before + 5);
    EXPECT_EQ(srv_->connections(), 5);
  }
  EXPECT_TRUE(eventually([&] { return sessions() == before; })) << sessions();
  EXPECT_TRUE(eventually([&] { return srv_->connections() == 0; }));
  EXPECT_EQ(before, 0) << "no session of an earlier test is left";
}

TEST_F(Server, AHalfClosedClientGetsEveryAnswerThenTheConnectionCloses) {
  start();
  raw_connection c{port_};
  ASSERT_TRUE(c.send(get_request("/echo/1") + get_request("/hold/2") + get_request("/echo/3")));
  c.shutdown_send();
  ASSERT_TRUE(eventually([&] { return held_->size() == 1; }));
  ASSERT_TRUE(held_->release("/hold/2"));
  for (int i = 1; i <= 3; ++i)
    EXPECT_EQ(c.read_response().status, 200) << i;
  EXPECT_TRUE(c.wait_closed(2s));
}

TEST_F(Server, AHeadOverTheLimitIs431ThenClosed) {
  start();  // default header_limit: 16 KiB
  raw_connection c{port_};
  ASSERT_TRUE(c.send(get_request("/echo/ok")));
  ASSERT_EQ(c.read_response().status, 200);
  c.send(get_request("/echo/big", "X-Big: " + std::string(20 * 1024, 'a') + "\r\n"));
  auto r = c.read_response();
  EXPECT_EQ(r.status, 431);
  EXPECT_EQ(error_code_of(r), "header_too_large");
  EXPECT_EQ(r.headers["connection"], "close");
  EXPECT_TRUE(c.wait_closed(3s));
  // Under the limit is fine.
  raw_connection d{port_};
  ASSERT_TRUE(d.send(get_request("/echo/ok", "X-Big: " + std::string(12 * 1024, 'a') + "\r\n")));
  EXPECT_EQ(d.read_response().status, 200);
}

TEST_F(Server, AMalformedRequestIs400ThenClosedAfterTheAnswersBeforeIt) {
  start();
  for (std::string bad : {"GET /echo/x HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n",
                          "GET /echo/x HTTP/7.5\r\nHost: x\r\n\r\n",
                          "POST /post HTTP/1.1\r\nHost: x\r\nContent-Length: nine\r\n\r\n"}) {
    raw_connection c{port_};
    ASSERT_TRUE(c.send(get_request("/hold/before") + bad));
    ASSERT_TRUE(eventually([&] { return held_->release("/hold/before"); }));
    EXPECT_EQ(c.read_response().status, 200) << "the request before the bad one is answered";
    auto r = c.read_response();
    EXPECT_EQ(r.status, 400) << bad;
    EXPECT_EQ(error_code_of(r), "bad_request");
    EXPECT_TRUE(c.wait_closed(3s)) << bad;
  }
}

TEST_F(Server, AHeadNotCompletedWithinHeaderTimeoutIsClosed) {
  http::server_config sc;
  sc.header_timeout = 300ms;
  start(sc);
  raw_connection slow{port_};
  raw_connection idle{port_};
  auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(slow.send("GET /echo/slow HT"));
  EXPECT_TRUE(slow.wait_closed(3s));
  auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(took, 250ms);
  EXPECT_LT(took, 2s);
  // The head timeout runs from a head's first byte: a keep-alive connection with nothing to
  // say is idle (idle_timeout), not slow.
  EXPECT_FALSE(idle.wait_closed(200ms));
  ASSERT_TRUE(idle.send(get_request("/echo/idle")));
  EXPECT_EQ(idle.read_response().status, 200);
}

TEST_F(Server, IdleConnectionsCloseButNotWhileAnAnswerIsOwed) {
  http::server_config sc;
  sc.idle_timeout = 300ms;
  start(sc);
  raw_connection idle{port_};
  raw_connection busy{port_};
  ASSERT_TRUE(idle.send(get_request("/echo/a")));
  ASSERT_EQ(idle.read_response().status, 200);
  ASSERT_TRUE(busy.send(get_request("/hold/b")));
  ASSERT_TRUE(eventually([&] { return held_->size() == 1; }));
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_TRUE(idle.wait_closed(3s));
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 250ms);
  std::this_thread::sleep_for(400ms);  // the held request is now older than idle_timeout
  ASSERT_TRUE(held_->release("/hold/b"));
  EXPECT_EQ(busy.read_response().status, 200) << "a client waiting for an answer is not idle";
  t0 = std::chrono::steady_clock::now();
  EXPECT_TRUE(busy.wait_closed(3s)) << "idle from its last answer on";
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 250ms);
}

TEST_F(Server, ConnectionsBeyondTheCapGet503AndAreClosed) {
  http::server_config sc;
  sc.max_connections = 3;
  start(sc);
  std::vector<std::unique_ptr<raw_connection>> cs;
  for (int i = 0; i < 3; ++i) {
    cs.push_back(std::make_unique<raw_connection>(port_));
    ASSERT_TRUE(cs.back()->send(get_request("/echo/" + std::to_string(i))));
    ASSERT_EQ(cs.back()->read_response().status, 200);
  }
  raw_connection extra{port_};
  extra.send(get_request("/echo/extra"));
  auto r = extra.read_response();
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(error_code_of(r), "overloaded");
  EXPECT_EQ(r.headers["retry-after"], "1");
  EXPECT_TRUE(extra.wait_closed(3s));
  // The open ones still work, and once one closes a new connection is served again.
  ASSERT_TRUE(cs[0]->send(get_request("/echo/again")));
  EXPECT_EQ(cs[0]->read_response().status, 200);
  cs[2].reset();
  ASSERT_TRUE(eventually([&] { return srv_->connections() == 2; }));
  raw_connection later{port_};
  ASSERT_TRUE(later.send(get_request("/echo/later")));
  EXPECT_EQ(later.read_response().status, 200);
}

TEST_F(Server, StopLetsInFlightRequestsFinishThenCloses) {
  start();
  raw_connection busy{port_};
  raw_connection idle{port_};
  ASSERT_TRUE(idle.send(get_request("/echo/idle")));
  ASSERT_EQ(idle.read_response().status, 200);
  ASSERT_TRUE(busy.send(get_request("/hold/inflight")));
  ASSERT_TRUE(eventually([&] { return held_->size() == 1; }));
  auto t0 = std::chrono::steady_clock::now();
  std::thread stopper{[&] { srv_->stop(); }};
  EXPECT_TRUE(idle.wait_closed(2s)) << "an idle keep-alive connection closes at once";
  std::this_thread::sleep_for(200ms);
  ASSERT_TRUE(held_->release("/hold/inflight"));
  auto r = busy.read_response();
  EXPECT_EQ(r.status, 200) << "the in-flight request is answered";
  EXPECT_EQ(r.headers["connection"], "close");
  EXPECT_TRUE(busy.wait_closed(2s));
  stopper.join();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 3s);
  EXPECT_TRUE(eventually([] { return sessions() == 0; }));
  raw_connection refused{port_};
  EXPECT_FALSE(refused.connected() && refused.send(get_request("/echo/x")) &&
               refused.read_response(500ms).status != 0)
      << "nothing is accepted after stop";
}

// Lowest descriptor numbers free below `limit`, given the ones open now.
int free_below(int limit) {
  std::set<int> open;
  if (DIR* d = ::opendir("/proc/self/fd")) {
    int self_fd = ::dirfd(d);
    while (auto* e = ::readdir(d)) {
      if (e->d_name[0] == '.')
        continue;
      int fd = std::atoi(e->d_name);
      if (fd != self_fd)
        open.insert(fd);
    }
    ::closedir(d);
  }
  int n = 0;
  for (int fd = 0; fd < limit; ++fd)
    n += open.count(fd) == 0;
  return n;
}

TEST_F(Server, AcceptErrorsBackOffInsteadOfSpinning) {
  start();
  // Client sockets first (each takes a descriptor now), then a descriptor limit that leaves
  // the server room for exactly one accept: the other connections wait in the backlog and
  // every accept() fails with EMFILE while the limit holds.
  constexpr int clients = 6;
  std::vector<int> fds;
  for (int i = 0; i < clients; ++i)
    fds.push_back(::socket(AF_INET, SOCK_STREAM, 0));
  rlimit old{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &old), 0);
  int limit = 3;
  while (free_below(limit) < 1)
    ++limit;
  rlimit low = old;
  low.rlim_cur = static_cast<rlim_t>(limit);
  auto errors_before = accept_errors();
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &low), 0);
  for (int fd : fds) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port_);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  }
  std::this_thread::sleep_for(700ms);
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &old), 0);
  auto errors = accept_errors() - errors_before;
  EXPECT_GE(errors, 1u) << "the limit did not bite; the test proves nothing";
  EXPECT_LE(errors, 12u) << "accept errors must back off (10 ms doubling, capped at 1 s)";
  // Once descriptors are back, every waiting connection is served.
  for (int fd : fds) {
    auto req = get_request("/echo/after");
    ASSERT_EQ(::send(fd, req.data(), req.size(), MSG_NOSIGNAL), static_cast<ssize_t>(req.size()));
  }
  for (int fd : fds) {
    std::string got;
    auto until = std::chrono::steady_clock::now() + 5s;
    while (got.find("/echo/after") == std::string::npos &&
           std::chrono::steady_clock::now() < until) {
      char buf[4096];
      timeval tv{0, 200000};
      ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      auto n = ::recv(fd, buf, sizeof buf, 0);
      if (n > 0)
        got.append(buf, static_cast<std::size_t>(n));
      else if (n == 0)
        break;
    }
    EXPECT_EQ(got.rfind("HTTP/1.1 200", 0), 0u) << got;
    ::close(fd);
  }
}

} // namespace

// --- Expect: 100-continue (curl sends it for bodies over 1 KiB, then waits 1 s for the 100)

std::string post_head(const std::string& target, std::size_t length, bool expect) {
  return "POST " + target + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" +
         "Content-Length: " + std::to_string(length) + "\r\n" +
         (expect ? "Expect: 100-continue\r\n" : "") + "\r\n";
}

TEST_F(Server, Expect100ContinueGetsTheInterimAnswerBeforeTheBodyIsSent) {
  start();
  raw_connection c{port_};
  std::string body = "{\"x\":\"" + std::string(2000, 'a') + "\"}";
  ASSERT_TRUE(c.send(post_head("/post", body.size(), true)));
  // Well under curl's 1 s wait: the server answered, the client did not time out.
  auto t0 = std::chrono::steady_clock::now();
  auto interim = c.read_response(500ms);
  EXPECT_EQ(interim.status, 100);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 500ms);
  ASSERT_TRUE(c.send(body));
  auto r = c.read_response();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, body);
  // The same connection goes on; without Expect nothing changes (no interim answer).
  ASSERT_TRUE(c.send(post_head("/post", 7, false) + "{\"y\":1}"));
  r = c.read_response();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "{\"y\":1}");
  // HTTP/1.0 cannot take a 1xx: the expectation is ignored, the body read as usual.
  raw_connection old{port_};
  ASSERT_TRUE(old.send("POST /post HTTP/1.0\r\nContent-Length: 7\r\nExpect: 100-continue\r\n\r\n"
                       "{\"z\":2}"));
  r = old.read_response();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "{\"z\":2}");
}

TEST_F(Server, Expect100ContinueOverTheBodyLimitIs413WithoutTheBody) {
  http::server_config sc;
  sc.body_limit = 4096;
  start(sc);
  raw_connection c{port_};
  ASSERT_TRUE(c.send(post_head("/post", 1 << 20, true)));
  auto r = c.read_response(2s);  // the final answer, no 100 first
  EXPECT_EQ(r.status, 413);
  EXPECT_EQ(error_code_of(r), "body_too_large");
  EXPECT_EQ(r.headers["connection"], "close");
  EXPECT_TRUE(c.wait_closed(3s));
  EXPECT_EQ(held_->calls.load(), 0);
}

TEST_F(Server, Expect100ContinueRefusedByTheHeadCheckIsAnsweredWithoutTheBody) {
  http::server_config sc;
  sc.expect_check = [](const http::request& head) -> std::optional<http::response> {
    if (head.target == "/post")
      return std::nullopt;
    http::response r;
    r.status = 401;
    r.body = "{\"error\":{\"code\":\"unauthorized\",\"message\":\"no\"}}";
    return r;
  };
  start(sc);
  raw_connection c{port_};
  ASSERT_TRUE(c.send(post_head("/elsewhere", 5000, true)));
  auto r = c.read_response(2s);
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(r.headers["connection"], "close");
  EXPECT_TRUE(c.wait_closed(3s));
  EXPECT_EQ(held_->calls.load(), 0);
  // A client that sends the body anyway still reads the answer (the server drains, no reset).
  raw_connection d{port_};
  ASSERT_TRUE(d.send(post_head("/elsewhere", 5000, true) + std::string(5000, 'b')));
  EXPECT_EQ(d.read_response(2s).status, 401);
  // The check passes: 100, then the answer.
  raw_connection e{port_};
  ASSERT_TRUE(e.send(post_head("/post", 2, true)));
  EXPECT_EQ(e.read_response(2s).status, 100);
  ASSERT_TRUE(e.send("{}"));
  EXPECT_EQ(e.read_response().status, 200);
}

// --- X-Forwarded-For (http.trusted_proxies)

TEST_F(Server, TheClientAddressComesFromXForwardedForOnlyBehindATrustedPeer) {
  auto remote_of = [&](std::uint16_t port, const std::string& xff) {
    raw_connection c{port};
    c.send(get_request("/echo/x", "X-Forwarded-For: " + xff + "\r\n"));
    return std::string(parse_json(c.read_response().body)["remote"].GetString());
  };
  start();  // nothing trusted
  EXPECT_EQ(remote_of(port_, "203.0.113.5"), "127.0.0.1");
  srv_.reset();
  http::server_config sc;
  std::string err;
  sc.trusted_proxies = *config::ip_ranges::parse("127.0.0.1", err);
  start(sc);
  EXPECT_EQ(remote_of(port_, "6.6.6.6, 203.0.113.5"), "203.0.113.5");
  EXPECT_EQ(remote_of(port_, "garbage"), "127.0.0.1");
}
