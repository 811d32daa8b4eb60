#include "rules/webhook_client.hpp"

#include <atomic>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <openssl/ssl.h>

#include "rules/rule.hpp"
#include "rules/target_policy.hpp"

namespace joule::rules {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;

struct webhook_client::impl {
  asio::io_context ioc;
  asio::executor_work_guard<asio::io_context::executor_type> work{ioc.get_executor()};
  asio::ssl::context tls{asio::ssl::context::tls_client};
  std::thread thread;

  impl() {
    tls.set_default_verify_paths();
    tls.set_verify_mode(asio::ssl::verify_peer);
  }
};

namespace {

// One attempt: resolve, connect, (TLS handshake,) write, read, all under one deadline.
// Every step runs on the single I/O thread, so `finished` needs no lock.
template <class Stream>
class attempt : public std::enable_shared_from_this<attempt<Stream>> {
public:
  attempt(asio::io_context& ioc, Stream stream, webhook_target target, webhook_request req,
          std::function<void(webhook_response)> done)
    : stream_(std::move(stream)), resolver_(ioc), deadline_(ioc), target_(std::move(target)),
      done_(std::move(done)) {
    req_.method(bhttp::verb::post);
    req_.target(target_.target);
    req_.version(11);
    bool default_port = target_.port == (target_.tls ? 443 : 80);
    // An IPv6 literal goes back into brackets (RFC 7230 Host = uri-host [":" port]).
    auto host = target_.host.find(':') == std::string::npos ? target_.host
                                                            : "[" + target_.host + "]";
    req_.set(bhttp::field::host, default_port ? host : host + ":" + std::to_string(target_.port));
    req_.set(bhttp::field::user_agent, "joule-alerts/1");
    req_.set(bhttp::field::content_type, "application/json");
    req_.set(bhttp::field::connection, "close");
    for (auto& [k, v] : req.headers)
      req_.set(k, v);
    req_.body() = std::move(req.body);
    req_.prepare_payload();
    timeout_ = req.timeout;
    allow_private_ = req.allow_private_targets;
    parser_.body_limit(1 << 20);
  }

  void start() {
    auto self = this->shared_from_this();
    deadline_.expires_after(timeout_);
    deadline_.async_wait([self](beast::error_code ec) {
      if (!ec)
        self->finish(0, "timeout",
                     "no answer within " + std::to_string(self->timeout_.count()) + " ms");
    });
    resolver_.async_resolve(target_.host, std::to_string(target_.port),
                            [self](beast::error_code ec, tcp::resolver::results_type results) {
                              if (ec)
                                return self->finish(0, "resolve_failed", ec.message());
                              self->connect(results);
                            });
  }

private:
  // Keeps the resolved addresses the policy allows; the socket connects to exactly these.
  void connect(const tcp::resolver::results_type& results) {
    if (finished_)
      return;  // the deadline fired while the answer was already queued
    std::string refused;
    for (const auto& entry : results) {
      const auto& ep = entry.endpoint();
      if (target_address_allowed(ep.address(), allow_private_))
        endpoints_.push_back(ep);
      else
        refused += (refused.empty() ? "" : ", ") + ep.address().to_string() + " (" +
                   classify_address(ep.address()).range + ")";
    }
    if (endpoints_.empty())
      return finish(0, "target_forbidden",
                    target_.host + " resolved to " +
                        (refused.empty() ? std::string("no address") : refused) +
                        (allow_private_ ? ": never a TCP peer"
                                        : ": not public (alerts.allow_private_targets is off)"));
    auto self = this->shared_from_this();
    beast::get_lowest_layer(stream_).async_connect(
        endpoints_, [self](beast::error_code ec, const tcp::endpoint&) {
          if (ec)
            return self->finish(0, "connect_failed", ec.message());
          self->handshake();
        });
  }

  void handshake() {
    if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
      write();
    } else {
      auto self = this->shared_from_this();
      if (!SSL_set_tlsext_host_name(stream_.native_handle(), target_.host.c_str()))
        return finish(0, "tls_failed", "cannot set SNI host name");
      stream_.set_verify_callback(asio::ssl::host_name_verification(target_.host));
      stream_.async_handshake(asio::ssl::stream_base::client, [self](beast::error_code ec) {
        if (ec)
          return self->finish(0, "tls_failed", ec.message());
        self->write();
      });
    }
  }

  void write() {
    auto self = this->shared_from_this();
    bhttp::async_write(stream_, req_, [self](beast::error_code ec, std::size_t) {
      if (ec)
        return self->finish(0, "send_failed", ec.message());
      bhttp::async_read(self->stream_, self->buffer_, self->parser_,
                        [self](beast::error_code ec, std::size_t) {
                          // A receiver may answer and close early: the status counts.
                          if (ec && !self->parser_.is_header_done())
                            return self->finish(0, "read_failed", ec.message());
                          self->finish(static_cast<int>(self->parser_.get().result_int()), {},
                                       {});
                        });
    });
  }

  void finish(int status, std::string error, std::string detail) {
    if (finished_)
      return;
    finished_ = true;
    deadline_.cancel();
    resolver_.cancel();
    beast::error_code ignored;
    beast::get_lowest_layer(stream_).socket().close(ignored);
    done_(webhook_response{status, std::move(error), std::move(detail)});
  }

  Stream stream_;
  tcp::resolver resolver_;
  asio::steady_timer deadline_;
  webhook_target target_;
  std::function<void(webhook_response)> done_;
  bhttp::request<bhttp::string_body> req_;
  bhttp::response_parser<bhttp::string_body> parser_;
  beast::flat_buffer buffer_;
  std::chrono::milliseconds timeout_{5000};
  bool allow_private_ = false;
  std::vector<tcp::endpoint> endpoints_;  // resolved and allowed: the only connect targets
  bool finished_ = false;
};

} // namespace

webhook_client::webhook_client() : impl_(std::make_shared<impl>()) {
  impl_->thread = std::thread([i = impl_.get()] { i->ioc.run(); });
}

webhook_client::~webhook_client() {
  impl_->work.reset();
  impl_->ioc.stop();
  if (impl_->thread.joinable())
    impl_->thread.join();
}

void webhook_client::post(webhook_request req, std::function<void(webhook_response)> done) {
  auto target = parse_webhook_url(req.url);
  if (!target) {
    done(webhook_response{0, "invalid_url", "cannot parse the webhook URL"});
    return;
  }
  asio::post(impl_->ioc, [i = impl_.get(), target = *target, req = std::move(req),
                          done = std::move(done)]() mutable {
    if (target.tls) {
      auto a = std::make_shared<attempt<beast::ssl_stream<beast::tcp_stream>>>(
          i->ioc, beast::ssl_stream<beast::tcp_stream>(i->ioc, i->tls), std::move(target),
          std::move(req), std::move(done));
      a->start();
    } else {
      auto a = std::make_shared<attempt<beast::tcp_stream>>(
          i->ioc, beast::tcp_stream(i->ioc), std::move(target), std::move(req), std::move(done));
      a->start();
    }
  });
}

} // namespace joule::rules
