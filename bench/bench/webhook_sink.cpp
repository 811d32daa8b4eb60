#include "bench/webhook_sink.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

#include "common/time_format.hpp"

namespace joule::bench {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using recorder = std::function<void(const http::request<http::string_body>&)>;

struct webhook_sink::impl {
  asio::io_context ioc{1};
  tcp::acceptor acceptor{ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)};
  std::thread thread;
  mutable std::mutex mutex;
  mutable std::condition_variable arrived;
  std::vector<webhook_arrival> log;

  void record(const http::request<http::string_body>& req) {
    webhook_arrival a;
    a.steady = std::chrono::steady_clock::now();
    a.system_s = now_seconds();
    if (auto it = req.find("X-Joule-Alert-Id"); it != req.end())
      a.header_alert_id = std::string(it->value());
    parse_webhook_body(req.body(), a.body);
    {
      std::lock_guard<std::mutex> lock(mutex);
      log.push_back(std::move(a));
    }
    arrived.notify_all();
  }

  recorder on_request = [this](const http::request<http::string_body>& req) { record(req); };

  void accept();
};

namespace {

struct session : std::enable_shared_from_this<session> {
  session(tcp::socket s, const recorder& r) : stream(std::move(s)), record(r) {}
  beast::tcp_stream stream;
  beast::flat_buffer buffer;
  http::request<http::string_body> req;
  http::response<http::string_body> res;
  const recorder& record; // owned by the sink, which outlives its sessions

  void read() {
    req = {};
    stream.expires_after(std::chrono::seconds(60));
    http::async_read(stream, buffer, req,
                     [self = shared_from_this()](beast::error_code ec, size_t) { self->on_read(ec); });
  }

  void on_read(beast::error_code ec) {
    if (ec)
      return close();
    const bool post = req.method() == http::verb::post;
    if (post)
      record(req);
    res = {};
    res.version(11);
    res.result(post ? http::status::ok : http::status::method_not_allowed);
    res.set(http::field::content_type, "application/json");
    res.body() = post ? "{\"ok\":true}" : "{\"error\":\"POST only\"}";
    res.keep_alive(req.keep_alive());
    res.prepare_payload();
    http::async_write(stream, res, [self = shared_from_this()](beast::error_code wec, size_t) {
      if (wec || !self->res.keep_alive())
        return self->close();
      self->read();
    });
  }

  void close() {
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream.close();
  }
};

} // namespace

void webhook_sink::impl::accept() {
  acceptor.async_accept([this](beast::error_code ec, tcp::socket s) {
    if (!ec) {
      s.set_option(tcp::no_delay(true), ec);
      std::make_shared<session>(std::move(s), on_request)->read();
    }
    if (acceptor.is_open())
      accept();
  });
}

webhook_sink::webhook_sink() : impl_(std::make_unique<impl>()) {
  impl_->accept();
  impl_->thread = std::thread([this] { impl_->ioc.run(); });
}

webhook_sink::~webhook_sink() {
  asio::post(impl_->ioc, [this] {
    beast::error_code ignored;
    impl_->acceptor.close(ignored);
  });
  impl_->ioc.stop();
  impl_->thread.join();
}

uint16_t webhook_sink::port() const { return impl_->acceptor.local_endpoint().port(); }

std::string webhook_sink::url() const {
  return "http://127.0.0.1:" + std::to_string(port()) + "/joule-bench/webhook";
}

uint64_t webhook_sink::received() const {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  return impl_->log.size();
}

std::optional<webhook_arrival> webhook_sink::wait_for(const std::string& rule_id,
                                                      const std::string& status,
                                                      std::chrono::milliseconds timeout) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::unique_lock<std::mutex> lock(impl_->mutex);
  size_t scanned = 0;
  for (;;) {
    for (; scanned < impl_->log.size(); ++scanned) {
      const auto& a = impl_->log[scanned];
      if (a.body.rule_id == rule_id && a.body.status == status)
        return a;
    }
    if (impl_->arrived.wait_until(lock, deadline) == std::cv_status::timeout) {
      for (; scanned < impl_->log.size(); ++scanned) {
        const auto& a = impl_->log[scanned];
        if (a.body.rule_id == rule_id && a.body.status == status)
          return a;
      }
      return std::nullopt;
    }
  }
}

std::vector<webhook_arrival> webhook_sink::arrivals() const {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  return impl_->log;
}

} // namespace joule::bench
