#include "http/server.hpp"

#include <caf/actor_system.hpp>
#include <caf/send.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <deque>
#include <mutex>
#include <optional>
#include <string_view>
#include <thread>
#include <vector>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include "core/log.hpp"
#include "core/metrics.hpp"
#include "http/errors.hpp"
#include "http/forwarded.hpp"
#include "http/session_actor.hpp"

namespace joule::http {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;
using std::chrono::milliseconds;

namespace {
class connection;
} // namespace

struct server::impl {
  server_config cfg;
  std::shared_ptr<const handler_fn> handler;
  caf::actor_system* sys = nullptr;
  std::atomic<int> active{0};       // requests read, not yet answered
  std::atomic<int> connections{0};  // open connections (each with a session actor)
  std::atomic<bool> stopping{false};
  // Connections register here so that stop() can reach them.
  std::mutex conns_mtx;
  std::vector<std::weak_ptr<connection>> conns;
  milliseconds accept_backoff{0};
  metrics::counter& accept_errors = metrics::global().get_counter(
      "joule_http_accept_errors_total", "accept() failures (each one backs the listener off)");
  metrics::counter& refused_connections = metrics::global().get_counter(
      "joule_http_refused_connections_total",
      "Connections answered 503 and closed because http.max_connections were open");
  // Declared last: destroyed first, together with the handlers (and connections) it holds,
  // while the members above still exist.
  std::vector<std::thread> threads;
  net::io_context ioc;
  std::optional<tcp::acceptor> acceptor;
  std::optional<net::steady_timer> accept_timer;

  impl(caf::actor_system& s, server_config c, handler_fn h)
    : cfg(std::move(c)), handler(std::make_shared<const handler_fn>(std::move(h))), sys(&s) {}
  void do_accept();
  void on_accept(tcp::socket socket);
  template <class F>
  void for_each_connection(F f);
};

namespace {

// The interim answer to `Expect: 100-continue` (RFC 9110 §10.1.1): go on, send the body.
constexpr std::string_view continue_line = "HTTP/1.1 100 Continue\r\n\r\n";

bool is_http_error(const beast::error_code& ec) {
  return ec.category() == bhttp::make_error_code(bhttp::error::end_of_stream).category();
}

class connection;

// What the session actor holds. While the connection is open it keeps it alive (answers are
// owed even when no I/O is pending, e.g. after the client half-closed); the connection
// detaches it when it closes, which breaks that cycle and guarantees that nothing is posted
// to the I/O context after server::stop() has closed every connection.
class beast_sink final : public connection_sink {
public:
  explicit beast_sink(std::shared_ptr<connection> c) : c_(std::move(c)) {}
  void deliver(response r, bool close) override;
  void abort() override;
  void detach() {
    std::shared_ptr<connection> gone;  // released after the lock (it may be the last one)
    std::lock_guard<std::mutex> g{mtx_};
    gone = std::move(c_);
  }

private:
  std::mutex mtx_;  // uncontended: taken once per answer
  std::shared_ptr<connection> c_;
};

// One accepted connection: socket I/O on its strand; the requests' meaning lives in its
// session actor. Read side: idle wait (idle_timeout, only while no answer is owed) → head
// (header_timeout from its first byte) → body (idle_timeout) → hand over → read the next one
// unless `pipeline_limit` requests are unanswered (then stop reading: back-pressure). Write
// side: the answers come back from the actor in request order and are written one by one.
class connection final : public std::enable_shared_from_this<connection> {
public:
  connection(tcp::socket&& socket, server::impl& srv)
    : socket_(std::move(socket)),
      ex_(socket_.get_executor()),
      read_deadline_(socket_.get_executor()),
      write_deadline_(socket_.get_executor()),
      srv_(srv) {
    beast::error_code ec;
    auto ep = socket_.remote_endpoint(ec);
    if (!ec)
      remote_ = ep.address().to_string();
  }

  ~connection() { release(); }

  void start(caf::actor session, std::shared_ptr<beast_sink> sink) {
    session_ = std::move(session);
    sink_ = std::move(sink);
    net::dispatch(socket_.get_executor(), [self = shared_from_this()] { self->do_read(); });
  }

  // From the session actor's thread (through beast_sink).
  void post_deliver(response r, bool close) {
    net::post(ex_, [self = shared_from_this(), r = std::move(r), close]() mutable {
      self->deliver(std::move(r), close);
    });
  }
  void post_close() {
    net::post(ex_, [self = shared_from_this()] { self->close(); });
  }
  // stop(): no new requests; close once the answers owed are written.
  void post_shutdown() {
    net::post(ex_, [self = shared_from_this()] {
      if (self->closed_)
        return;
      self->read_closed_ = true;
      if (self->outstanding_ == 0)
        self->close();
    });
  }
  // Only when no I/O thread runs any more (end of stop()).
  void close_now() { close(); }

private:
  enum class phase { idle, head, body };
  using time_point = std::chrono::steady_clock::time_point;
  static constexpr time_point never = time_point::max();

  // Whether the buffer holds the end of a request head (an empty line).
  bool head_buffered() const {
    auto data = buffer_.data();
    std::string_view sv{static_cast<const char*>(data.data()), data.size()};
    return sv.find("\r\n\r\n") != std::string_view::npos;
  }

  // --- read side
  void do_read() {
    if (read_closed_ || closed_)
      return;
    if (outstanding_ >= srv_.cfg.pipeline_limit) {
      paused_ = true;  // the kernel buffers fill up and TCP slows the client down
      return;
    }
    paused_ = false;
    parser_.emplace();
    parser_->header_limit(srv_.cfg.header_limit);
    parser_->body_limit(srv_.cfg.body_limit);
    reading_ = true;
    if (buffer_.size() > 0)
      return read_head();  // pipelined: the next head is already here
    phase_ = phase::idle;
    // Idle only while no answer is owed (else the client is waiting for us, not idle).
    set_deadline(read_deadline_, outstanding_ == 0
                                     ? std::chrono::steady_clock::now() + srv_.cfg.idle_timeout
                                     : never);
    socket_.async_read_some(buffer_.prepare(read_chunk),
                            [self = shared_from_this()](beast::error_code ec, std::size_t n) {
                              self->on_first_bytes(ec, n);
                            });
  }

  void on_first_bytes(beast::error_code ec, std::size_t n) {
    if (ec)
      return on_read_error(ec);
    buffer_.commit(n);
    if (read_closed_)
      return read_stopped();
    read_head();
  }

  void read_head() {
    phase_ = phase::head;
    // A head already complete in the buffer is parsed without waiting: nothing to time.
    if (head_buffered())
      set_deadline(read_deadline_, never);
    else
      set_deadline_in(read_deadline_, srv_.cfg.header_timeout);
    bhttp::async_read_header(socket_, buffer_, *parser_,
                             [self = shared_from_this()](beast::error_code ec, std::size_t) {
                               self->on_head(ec);
                             });
  }

  void on_head(beast::error_code ec) {
    if (ec)
      return on_read_error(ec);
    if (read_closed_)
      return read_stopped();
    if (parser_->is_done())
      return on_request();
    if (expects_continue())
      return on_expect();
    read_body();
  }

  // `Expect: 100-continue` (curl sends it for bodies over 1 KiB and waits a second for the
  // answer before sending the body anyway). Beast leaves it to us. The body limit was checked
  // with the head already (a larger Content-Length fails the head read: 413 via
  // on_read_error, the body never sent); the routing/credential check runs here, so that a
  // request that will be refused is refused before its body crosses the network.
  bool expects_continue() const {
    auto& h = parser_->get();
    // HTTP/1.0 clients cannot take a 1xx answer (RFC 9110 §10.1.1: ignore the expectation).
    return h.version() >= 11 && beast::iequals(h[bhttp::field::expect], "100-continue");
  }

  void on_expect() {
    if (srv_.cfg.expect_check) {
      request head;
      fill_head(parser_->get(), head);
      if (auto refusal = srv_.cfg.expect_check(head)) {
        // The body is not read; the connection closes after the answer (the client may still
        // send it: finish() drains it for a moment so our answer is not lost to a reset).
        reading_ = false;
        set_deadline(read_deadline_, never);
        return refuse(std::move(*refusal), std::move(head));
      }
    }
    // 100 only while nothing else is being written or owed: a 1xx between the answers of
    // earlier pipelined requests would break their order. The client then sends the body
    // after its own wait, as it would from a server that ignores Expect.
    if (outstanding_ > 0 || writing_)
      return read_body();
    write_started();
    net::async_write(socket_, net::buffer(continue_line.data(), continue_line.size()),
                     [self = shared_from_this()](beast::error_code ec, std::size_t) {
                       self->on_continue_written(ec);
                     });
  }

  void on_continue_written(beast::error_code ec) {
    if (!write_finished(ec))
      return;
    if (!writes_.empty())
      write_next();  // cannot happen (nothing is owed), but never leave an answer behind
    if (read_closed_)
      return read_stopped();
    read_body();
  }

  void read_body() {
    phase_ = phase::body;
    set_deadline_in(read_deadline_, srv_.cfg.idle_timeout);
    bhttp::async_read(socket_, buffer_, *parser_,
                      [self = shared_from_this()](beast::error_code ec, std::size_t) {
                        self->on_body(ec);
                      });
  }

  void on_body(beast::error_code ec) {
    if (ec)
      return on_read_error(ec);
    if (read_closed_)
      return read_stopped();
    on_request();
  }

  void on_request() {
    reading_ = false;
    set_deadline(read_deadline_, never);
    auto msg = parser_->release();
    pipelined_request in;
    in.seq = next_seq_++;
    in.keep_alive = msg.keep_alive();
    auto& r = in.req;
    fill_head(msg, r);
    r.body = std::move(msg.body());
    bool keep_alive = in.keep_alive;
    hand_over(std::move(in));
    if (!keep_alive)
      read_closed_ = true;  // nothing after `Connection: close` is read
    else
      do_read();
  }

  // Everything of a request but its body; the client address per http.trusted_proxies.
  template <class Head>
  void fill_head(const Head& msg, request& r) const {
    r.method = std::string(msg.method_string());
    r.target = std::string(msg.target());
    r.headers.reserve(8);
    std::vector<std::string_view> forwarded;
    for (auto& f : msg) {
      r.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
      if (f.name() == bhttp::field::content_type)
        r.content_type = r.headers.back().second;
      else if (beast::iequals(f.name_string(), "x-forwarded-for"))
        forwarded.emplace_back(f.value().data(), f.value().size());
    }
    r.peer_addr = remote_;
    r.remote_addr = client_address(remote_, forwarded, srv_.cfg.trusted_proxies);
  }

  void hand_over(pipelined_request&& in) {
    ++outstanding_;
    ++srv_.active;
    caf::anon_send(session_, std::move(in));
  }

  // The head or body could not be read. Either the client is gone (close), or it sent
  // something we refuse: answer that in order, after the requests before it, then close.
  void on_read_error(beast::error_code ec) {
    reading_ = false;
    set_deadline(read_deadline_, never);
    if (closed_)
      return;
    if (draining_)
      return close();  // the client is done (or gone)
    if (read_closed_)
      return read_stopped();
    if (ec == bhttp::error::end_of_stream || ec == bhttp::error::partial_message ||
        ec == net::error::eof) {
      // The client finished sending (a half-close is legal): answer what it sent, then close.
      read_closed_ = true;
      if (outstanding_ == 0)
        close();
      return;
    }
    if (ec == bhttp::error::header_limit || ec == bhttp::error::buffer_overflow)
      return refuse(error_response(431, "header_too_large",
                                   "the request head exceeds " +
                                       std::to_string(srv_.cfg.header_limit) + " bytes"));
    if (ec == bhttp::error::body_limit)
      return refuse(error_response(413, "body_too_large",
                                   "request body exceeds " +
                                       std::to_string(srv_.cfg.body_limit) + " bytes"));
    if (is_http_error(ec))
      return refuse(error_response(400, "bad_request", "malformed HTTP request: " + ec.message()));
    close();  // reset, aborted by our timer, ...
  }

  void refuse(response r, request head = {}) {
    read_closed_ = true;
    pipelined_request in;
    in.seq = next_seq_++;
    in.keep_alive = false;
    in.req = std::move(head);  // for the access line
    if (in.req.peer_addr.empty())
      in.req.remote_addr = in.req.peer_addr = remote_;
    in.refused = std::move(r);
    hand_over(std::move(in));
  }

  // A read finished after reading stopped (stop(), or the last answer was written).
  void read_stopped() {
    reading_ = false;
    if (draining_)
      return drain();
    set_deadline(read_deadline_, never);
    if (outstanding_ == 0)
      close();
  }

  // --- write side
  void deliver(response r, bool close_after) {
    if (closed_ || draining_)
      return;  // the last answer was written already
    writes_.push_back(outgoing{std::move(r), close_after});
    if (!writing_)
      write_next();
  }

  void write_next() {
    auto& o = writes_.front();
    // Say `Connection: close` on the last answer this connection will ever write.
    bool last = o.close || (read_closed_ && outstanding_ == 1);
    res_.emplace();
    res_->result(static_cast<unsigned>(o.r.status));
    res_->version(11);
    res_->set(bhttp::field::server, "joule");
    res_->set(bhttp::field::content_type, o.r.content_type);
    for (auto& [k, v] : o.r.headers)
      res_->set(k, v);
    res_->keep_alive(!last);
    res_->body() = std::move(o.r.body);
    res_->prepare_payload();
    writes_.pop_front();
    write_started();
    bhttp::async_write(socket_, *res_,
                       [self = shared_from_this()](beast::error_code ec, std::size_t) {
                         self->on_write(ec);
                       });
  }

  // Every write (an answer, a 100 Continue): one at a time, under the write deadline.
  void write_started() {
    writing_ = true;
    set_deadline_in(write_deadline_, srv_.cfg.request_timeout);
  }

  // False when the session is over: closed meanwhile, or the write failed (closed here).
  bool write_finished(beast::error_code ec) {
    writing_ = false;
    set_deadline(write_deadline_, never);
    if (closed_)
      return false;
    if (ec) {
      close();
      return false;
    }
    return true;
  }

  void on_write(beast::error_code ec) {
    if (!write_finished(ec))
      return;
    bool last = !res_->keep_alive();
    res_.reset();
    --outstanding_;
    --srv_.active;
    if (last || (read_closed_ && outstanding_ == 0))
      return finish();
    if (!writes_.empty())
      write_next();
    if (paused_)
      do_read();
    else if (reading_ && phase_ == phase::idle && outstanding_ == 0)
      set_deadline_in(read_deadline_, srv_.cfg.idle_timeout);  // nothing owed: idle from now
  }

  // After the last answer: stop sending, and read and discard what the client still sends
  // for a moment. Closing with unread data would reset the connection and the client might
  // never see our answer (a 413 for a body we did not read, say).
  void finish() {
    read_closed_ = true;
    draining_ = true;
    beast::error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_send, ignored);
    set_deadline_in(read_deadline_, milliseconds(1000));
    if (!reading_)
      drain();  // else the pending read continues as the drain (read_stopped)
  }

  void drain() {
    reading_ = true;
    buffer_.clear();
    socket_.async_read_some(buffer_.prepare(read_chunk),
                            [self = shared_from_this()](beast::error_code ec, std::size_t) {
                              self->reading_ = false;
                              if (ec || self->closed_)
                                return self->close();
                              self->drain();
                            });
  }

  // --- deadlines: one for the read side, one for the write side. Moving a deadline later
  // or clearing it costs nothing (no timer operation, no syscall): the wait in flight finds
  // the deadline moved when it fires and waits again for the rest. Only an earlier deadline
  // re-arms the timer. So a busy keep-alive connection costs a timer operation every few
  // seconds, not several per request.
  struct deadline {
    explicit deadline(const net::any_io_executor& ex) : timer(ex) {}
    net::steady_timer timer;
    time_point due = never;    // when the current phase must be over
    time_point armed = never;  // expiry of the wait in flight, if any
  };

  void set_deadline(deadline& d, time_point due) {
    d.due = due;
    if (due == never || d.armed <= due)
      return;  // nothing to time, or the wait in flight fires first and re-checks
    arm(d, due);
  }
  void set_deadline_in(deadline& d, milliseconds from_now) {
    set_deadline(d, std::chrono::steady_clock::now() + from_now);
  }

  void arm(deadline& d, time_point at) {
    d.armed = at;
    d.timer.expires_at(at);  // aborts a later wait in flight
    d.timer.async_wait(
        [self = shared_from_this(), &d](beast::error_code ec) { self->on_deadline(d, ec); });
  }

  void on_deadline(deadline& d, beast::error_code ec) {
    if (ec || closed_)
      return;  // aborted: re-armed earlier, or closed
    d.armed = never;
    if (d.due == never)
      return;
    if (std::chrono::steady_clock::now() >= d.due)
      return close();  // idle, slow head or body, an answer nobody reads, or the drain is over
    arm(d, d.due);
  }

  void close() {
    if (closed_)
      return;
    closed_ = true;
    beast::error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
    read_deadline_.timer.cancel();
    write_deadline_.timer.cancel();
    srv_.active -= static_cast<int>(outstanding_);
    outstanding_ = 0;
    writes_.clear();
    release();
  }

  // The connection is gone: its session ends and it no longer counts.
  void release() {
    if (released_)
      return;
    released_ = true;
    --srv_.connections;
    if (sink_)
      sink_->detach();
    if (session_) {
      caf::anon_send(session_, session_closed_atom::value);
      session_ = nullptr;
    }
  }

  struct outgoing {
    response r;
    bool close = false;
  };

  static constexpr std::size_t read_chunk = 8192;

  tcp::socket socket_;
  net::any_io_executor ex_;  // the connection's strand
  deadline read_deadline_;
  deadline write_deadline_;
  server::impl& srv_;
  caf::actor session_;
  std::shared_ptr<beast_sink> sink_;
  std::string remote_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  std::optional<bhttp::response<bhttp::string_body>> res_;
  std::deque<outgoing> writes_;
  std::uint64_t next_seq_ = 0;
  std::size_t outstanding_ = 0;  // read and handed over, answer not written yet
  phase phase_ = phase::idle;
  bool reading_ = false;      // a read is pending
  bool paused_ = false;       // not reading because pipeline_limit answers are owed
  bool read_closed_ = false;  // no request is read any more
  bool writing_ = false;
  bool draining_ = false;
  bool closed_ = false;
  bool released_ = false;
};

void beast_sink::deliver(response r, bool close) {
  std::lock_guard<std::mutex> g{mtx_};
  if (c_)
    c_->post_deliver(std::move(r), close);
}

void beast_sink::abort() {
  std::lock_guard<std::mutex> g{mtx_};
  if (c_)
    c_->post_close();
}

// A connection beyond http.max_connections: answer 503 without reading, then close.
class refusal final : public std::enable_shared_from_this<refusal> {
public:
  explicit refusal(tcp::socket&& s) : socket_(std::move(s)), timer_(socket_.get_executor()) {
    auto r = error_response(503, "overloaded", "too many open connections; retry later");
    res_.result(503);
    res_.version(11);
    res_.set(bhttp::field::server, "joule");
    res_.set(bhttp::field::content_type, r.content_type);
    res_.set(bhttp::field::retry_after, "1");
    res_.keep_alive(false);
    res_.body() = std::move(r.body);
    res_.prepare_payload();
  }

  void run() {
    net::dispatch(socket_.get_executor(), [self = shared_from_this()] {
      // Whatever happens, the socket is gone within a second.
      self->timer_.expires_after(milliseconds(1000));
      self->timer_.async_wait([self](beast::error_code ec) {
        if (!ec)
          self->close();
      });
      bhttp::async_write(self->socket_, self->res_, [self](beast::error_code ec, std::size_t) {
        if (ec)
          return self->close();
        beast::error_code ignored;
        self->socket_.shutdown(tcp::socket::shutdown_send, ignored);
        self->drain();
      });
    });
  }

private:
  void drain() {
    socket_.async_read_some(net::buffer(scratch_), [self = shared_from_this()](
                                                       beast::error_code ec, std::size_t) {
      if (ec)
        return self->close();
      self->drain();
    });
  }
  void close() {
    beast::error_code ignored;
    timer_.cancel();
    socket_.close(ignored);
  }

  tcp::socket socket_;
  net::steady_timer timer_;
  bhttp::response<bhttp::string_body> res_;
  std::array<char, 1024> scratch_{};
};

} // namespace

template <class F>
void server::impl::for_each_connection(F f) {
  std::lock_guard<std::mutex> g{conns_mtx};
  for (auto& w : conns)
    if (auto c = w.lock())
      f(*c);
}

void server::impl::do_accept() {
  acceptor->async_accept(net::make_strand(ioc), [this](beast::error_code ec, tcp::socket socket) {
    if (stopping)
      return;
    if (ec) {
      // Out of descriptors (EMFILE/ENFILE), out of memory, ...: the listening socket stays
      // readable, so re-arming at once would spin. Back off exponentially, capped at 1 s.
      accept_errors.inc();
      accept_backoff = std::min(std::max(accept_backoff * 2, milliseconds(10)), milliseconds(1000));
      log(log_level::warn, "http",
          "accept: " + ec.message() + "; retrying in " + std::to_string(accept_backoff.count()) +
              " ms");
      accept_timer->expires_after(accept_backoff);
      accept_timer->async_wait([this](beast::error_code tec) {
        if (!tec && !stopping)
          do_accept();
      });
      return;
    }
    accept_backoff = milliseconds(0);
    on_accept(std::move(socket));
    do_accept();
  });
}

void server::impl::on_accept(tcp::socket socket) {
  beast::error_code ec;
  socket.set_option(tcp::no_delay(true), ec);
  if (connections.load() >= cfg.max_connections) {
    refused_connections.inc();
    std::make_shared<refusal>(std::move(socket))->run();
    return;
  }
  ++connections;
  auto c = std::make_shared<connection>(std::move(socket), *this);
  auto sink = std::make_shared<beast_sink>(c);
  auto session =
      spawn_session(*sys, session_config{cfg.pipeline_limit, cfg.request_timeout}, handler, sink);
  {
    std::lock_guard<std::mutex> g{conns_mtx};
    // Forget closed connections now and then so the list stays small.
    if (conns.size() > 1024 && conns.size() > 2 * static_cast<std::size_t>(connections.load()))
      conns.erase(std::remove_if(conns.begin(), conns.end(), [](auto& w) { return w.expired(); }),
                  conns.end());
    conns.push_back(c);
  }
  c->start(std::move(session), std::move(sink));
}

server::server(caf::actor_system& sys, server_config cfg, handler_fn handler)
  : impl_(std::make_unique<impl>(sys, std::move(cfg), std::move(handler))) {}

server::~server() { stop(); }

std::uint16_t server::start() {
  auto& s = *impl_;
  tcp::endpoint ep{net::ip::make_address(s.cfg.host), s.cfg.port};
  s.acceptor.emplace(s.ioc);
  s.acceptor->open(ep.protocol());
  s.acceptor->set_option(net::socket_base::reuse_address(true));
  s.acceptor->bind(ep);
  s.acceptor->listen(net::socket_base::max_listen_connections);
  s.accept_timer.emplace(s.ioc);
  auto port = s.acceptor->local_endpoint().port();
  s.do_accept();
  for (int i = 0; i < s.cfg.threads; ++i)
    s.threads.emplace_back([&s] { s.ioc.run(); });
  return port;
}

void server::stop() {
  auto& s = *impl_;
  if (s.threads.empty() || s.stopping.exchange(true))
    return;
  net::post(s.ioc, [&s] {
    beast::error_code ec;
    s.acceptor->close(ec);
    s.accept_timer->cancel();
  });
  // No new requests; a connection closes once it has written what it owes.
  s.for_each_connection([](connection& c) { c.post_shutdown(); });
  auto until = std::chrono::steady_clock::now() + s.cfg.drain_timeout;
  while (s.active > 0 && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(milliseconds(10));
  s.for_each_connection([](connection& c) { c.post_close(); });
  std::this_thread::sleep_for(milliseconds(20));
  s.ioc.stop();
  for (auto& t : s.threads)
    t.join();
  s.threads.clear();
  // Whatever the threads did not get to: every session actor must hear that its connection
  // is gone, or the actor system would wait for it forever.
  s.for_each_connection([](connection& c) { c.close_now(); });
}

int server::in_flight() const { return impl_->active; }

int server::connections() const { return impl_->connections; }

} // namespace joule::http
