#include "tests/rules/webhook_receiver.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

namespace joule::rules::test {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;

struct webhook_receiver::impl {
  asio::io_context ioc;
  tcp::acceptor acceptor{ioc};
  std::atomic<bool> stopping{false};
  std::atomic<int> status{200};
  mutable std::mutex mtx;
  std::condition_variable released;
  bool holding = false;
  std::vector<received_webhook> seen;
  std::thread accept_thread;
  std::vector<std::thread> sessions;
  std::vector<std::shared_ptr<tcp::socket>> sockets;

  void accept_loop() {
    while (!stopping) {
      auto socket = std::make_shared<tcp::socket>(ioc);
      beast::error_code ec;
      acceptor.accept(*socket, ec);
      if (ec || stopping)
        return;
      std::lock_guard<std::mutex> g{mtx};
      sockets.push_back(socket);
      sessions.emplace_back([this, socket] { serve(*socket); });
    }
  }

  void serve(tcp::socket& socket) {
    beast::flat_buffer buffer;
    for (;;) {
      bhttp::request<bhttp::string_body> req;
      beast::error_code ec;
      bhttp::read(socket, buffer, req, ec);
      if (ec)
        return;
      std::size_t index;
      {
        std::unique_lock<std::mutex> g{mtx};
        received_webhook r;
        r.target = std::string(req.target());
        r.alert_id = std::string(req["X-Joule-Alert-Id"]);
        r.timestamp = std::string(req["X-Joule-Timestamp"]);
        r.signature = std::string(req["X-Joule-Signature"]);
        r.body = req.body();
        r.at = std::chrono::steady_clock::now();
        seen.push_back(std::move(r));
        index = seen.size() - 1;
        released.wait(g, [this] { return !holding || stopping; });
        if (stopping)
          return;
      }
      int code = status.load();
      bhttp::response<bhttp::string_body> res{static_cast<bhttp::status>(code), req.version()};
      res.set(bhttp::field::content_type, "application/json");
      res.body() = "{}";
      res.keep_alive(req.keep_alive());
      res.prepare_payload();
      bhttp::write(socket, res, ec);
      {
        std::lock_guard<std::mutex> g{mtx};
        if (!ec)
          seen[index].answered = code;
      }
      if (ec || !req.keep_alive())
        return;
    }
  }
};

webhook_receiver::webhook_receiver(std::uint16_t port) : impl_(std::make_unique<impl>()) {
  tcp::endpoint ep{asio::ip::make_address("127.0.0.1"), port};
  impl_->acceptor.open(ep.protocol());
  impl_->acceptor.set_option(asio::socket_base::reuse_address(true));
  impl_->acceptor.bind(ep);
  impl_->acceptor.listen();
  impl_->accept_thread = std::thread([i = impl_.get()] { i->accept_loop(); });
}

webhook_receiver::~webhook_receiver() {
  impl_->stopping = true;
  {
    std::lock_guard<std::mutex> g{impl_->mtx};
    impl_->released.notify_all();
  }
  beast::error_code ignored;
  {
    // Wake the blocking accept with a connection of our own.
    tcp::socket poke(impl_->ioc);
    poke.connect(impl_->acceptor.local_endpoint(), ignored);
  }
  impl_->accept_thread.join();
  {
    std::lock_guard<std::mutex> g{impl_->mtx};
    for (auto& s : impl_->sockets)
      s->shutdown(tcp::socket::shutdown_both, ignored);
  }
  for (auto& t : impl_->sessions)
    t.join();
  impl_->acceptor.close(ignored);
}

std::uint16_t webhook_receiver::port() const { return impl_->acceptor.local_endpoint().port(); }

void webhook_receiver::answer_with(int status) { impl_->status = status; }

void webhook_receiver::hold(bool on) {
  std::lock_guard<std::mutex> g{impl_->mtx};
  impl_->holding = on;
  impl_->released.notify_all();
}

std::vector<received_webhook> webhook_receiver::requests() const {
  std::lock_guard<std::mutex> g{impl_->mtx};
  return impl_->seen;
}

std::size_t webhook_receiver::count() const {
  std::lock_guard<std::mutex> g{impl_->mtx};
  return impl_->seen.size();
}

std::uint16_t reserve_port() {
  asio::io_context ioc;
  tcp::acceptor a{ioc, tcp::endpoint{asio::ip::make_address("127.0.0.1"), 0}};
  return a.local_endpoint().port();
}

} // namespace joule::rules::test
