#include "http/server.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <mutex>
#include <optional>
#include <thread>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include "core/log.hpp"

namespace joule::http {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;

struct session_base {
  virtual ~session_base() = default;
  virtual void close() = 0;
};

struct server::impl {
  server_config cfg;
  handler_fn handler;
  net::io_context ioc;
  std::optional<tcp::acceptor> acceptor;
  std::vector<std::thread> threads;
  std::atomic<int> active{0};
  std::atomic<bool> stopping{false};
  // Sessions register here so that stop() can close idle keep-alive connections.
  std::mutex sessions_mtx;
  std::vector<std::weak_ptr<session_base>> sessions;

  explicit impl(server_config c, handler_fn h) : cfg(std::move(c)), handler(std::move(h)) {}
  void do_accept();
};

namespace {

response error_response(int status, const std::string& code, const std::string& message) {
  response r;
  r.status = status;
  r.body = "{\"error\":{\"code\":\"" + code + "\",\"message\":\"" + message + "\"}}";
  return r;
}

class session : public session_base, public std::enable_shared_from_this<session> {
public:
  session(tcp::socket&& socket, server::impl& srv)
    : stream_(std::move(socket)), timer_(stream_.get_executor()), srv_(srv) {}

  void run() {
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->do_read(); });
  }

  void close() override {
    net::post(stream_.get_executor(), [self = shared_from_this()] {
      if (!self->busy_) {
        beast::error_code ec;
        self->stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
        self->stream_.close();
      } else {
        self->close_after_reply_ = true;
      }
    });
  }

private:
  void do_read() {
    if (srv_.stopping) {
      stream_.close();
      return;
    }
    parser_.emplace();
    parser_->body_limit(srv_.cfg.body_limit);
    stream_.expires_after(srv_.cfg.idle_timeout);
    bhttp::async_read(stream_, buffer_, *parser_,
                      [self = shared_from_this()](beast::error_code ec, std::size_t) {
                        self->on_read(ec);
                      });
  }

  void on_read(beast::error_code ec) {
    if (ec == bhttp::error::body_limit) {
      keep_alive_ = false;
      busy_ = true;
      ++srv_.active;
      ++seq_;
      write(error_response(413, "body_too_large",
                           "request body exceeds " + std::to_string(srv_.cfg.body_limit) +
                               " bytes"));
      return;
    }
    if (ec) {
      // end_of_stream, timeout, reset: the connection is done.
      beast::error_code ignored;
      stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
      return;
    }
    auto req = parser_->release();
    keep_alive_ = req.keep_alive();
    stream_.expires_never();
    request r;
    r.method = std::string(req.method_string());
    r.target = std::string(req.target());
    r.body = std::move(req.body());
    r.content_type = std::string(req[bhttp::field::content_type]);
    for (auto& f : req)
      r.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
    beast::error_code peer_ec;
    auto peer = stream_.socket().remote_endpoint(peer_ec);
    if (!peer_ec)
      r.remote_addr = peer.address().to_string();
    busy_ = true;
    ++srv_.active;
    const auto my_seq = ++seq_;
    // The reply may come from any thread; it is posted to this connection's strand and
    // dropped if the request already timed out.
    respond_fn respond = [self = shared_from_this(), my_seq](response resp) {
      net::post(self->stream_.get_executor(), [self, my_seq, resp = std::move(resp)]() mutable {
        if (self->seq_ == my_seq && self->busy_ && !self->writing_)
          self->write(std::move(resp));
      });
    };
    timer_.expires_after(srv_.cfg.request_timeout);
    timer_.async_wait([self = shared_from_this(), my_seq](beast::error_code tec) {
      if (tec || self->seq_ != my_seq || !self->busy_ || self->writing_)
        return;
      auto resp = error_response(503, "timeout", "the request took too long; retry later");
      resp.headers.emplace_back("Retry-After", "1");
      self->write(std::move(resp));
    });
    try {
      srv_.handler(std::move(r), std::move(respond));
    } catch (const std::exception& e) {
      log(log_level::error, "http", std::string("handler threw: ") + e.what());
      write(error_response(500, "internal", "internal error"));
    }
  }

  void write(response resp) {
    writing_ = true;
    timer_.cancel();
    res_.emplace();
    res_->result(static_cast<unsigned>(resp.status));
    res_->version(11);
    res_->set(bhttp::field::server, "joule");
    res_->set(bhttp::field::content_type, resp.content_type);
    for (auto& [k, v] : resp.headers)
      res_->set(k, v);
    res_->keep_alive(keep_alive_ && !srv_.stopping && !close_after_reply_);
    res_->body() = std::move(resp.body);
    res_->prepare_payload();
    stream_.expires_after(srv_.cfg.request_timeout);
    bhttp::async_write(stream_, *res_,
                       [self = shared_from_this()](beast::error_code ec, std::size_t) {
                         self->on_write(ec);
                       });
  }

  void on_write(beast::error_code ec) {
    bool keep = res_->keep_alive();
    res_.reset();
    writing_ = false;
    busy_ = false;
    --srv_.active;
    if (ec || !keep) {
      beast::error_code ignored;
      stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
      if (!ec)
        drain();
      return;
    }
    do_read();
  }

  // After refusing a request whose body we did not read (413), read and discard what the
  // client still sends for a moment: closing with unread data would reset the connection and
  // the client might never see our answer.
  void drain() {
    stream_.expires_after(std::chrono::seconds(1));
    stream_.async_read_some(net::buffer(scratch_),
                            [self = shared_from_this()](beast::error_code ec, std::size_t) {
                              if (!ec)
                                self->drain();
                            });
  }

  beast::tcp_stream stream_;
  net::steady_timer timer_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  std::optional<bhttp::response<bhttp::string_body>> res_;
  server::impl& srv_;
  std::array<char, 16384> scratch_{};
  std::uint64_t seq_ = 0;
  bool keep_alive_ = true;
  bool busy_ = false;
  bool writing_ = false;
  bool close_after_reply_ = false;
};

} // namespace

std::string request::header(const std::string& name) const {
  for (auto& [k, v] : headers)
    if (beast::iequals(k, name))
      return v;
  return {};
}

void server::impl::do_accept() {
  acceptor->async_accept(net::make_strand(ioc), [this](beast::error_code ec, tcp::socket socket) {
    if (ec) {
      if (stopping)
        return;
      log(log_level::warn, "http", "accept: " + ec.message());
    } else {
      socket.set_option(tcp::no_delay(true), ec);
      auto s = std::make_shared<session>(std::move(socket), *this);
      {
        std::lock_guard<std::mutex> g{sessions_mtx};
        // Forget closed sessions now and then so the list stays small.
        if (sessions.size() > 1024)
          sessions.erase(std::remove_if(sessions.begin(), sessions.end(),
                                        [](auto& w) { return w.expired(); }),
                         sessions.end());
        sessions.push_back(s);
      }
      s->run();
    }
    if (!stopping)
      do_accept();
  });
}

server::server(server_config cfg, handler_fn handler)
  : impl_(std::make_unique<impl>(std::move(cfg), std::move(handler))) {}

server::~server() { stop(); }

std::uint16_t server::start() {
  auto& s = *impl_;
  tcp::endpoint ep{net::ip::make_address(s.cfg.host), s.cfg.port};
  s.acceptor.emplace(s.ioc);
  s.acceptor->open(ep.protocol());
  s.acceptor->set_option(net::socket_base::reuse_address(true));
  s.acceptor->bind(ep);
  s.acceptor->listen(net::socket_base::max_listen_connections);
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
  });
  auto until = std::chrono::steady_clock::now() + s.cfg.drain_timeout;
  while (s.active > 0 && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  {
    std::lock_guard<std::mutex> g{s.sessions_mtx};
    for (auto& w : s.sessions)
      if (auto sp = w.lock())
        sp->close();
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  s.ioc.stop();
  for (auto& t : s.threads)
    t.join();
  s.threads.clear();
}

int server::in_flight() const { return impl_->active; }

} // namespace joule::http
