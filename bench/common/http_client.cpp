#include "common/http_client.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <cstdlib>
#include <mutex>

namespace joule::bench {

namespace {
std::mutex token_mutex;
std::string& token_storage() {
  static std::string token = [] {
    const char* t = std::getenv("JOULE_TOKEN");
    return std::string(t ? t : "");
  }();
  return token;
}
} // namespace

void set_bearer_token(const std::string& token) {
  std::lock_guard<std::mutex> g{token_mutex};
  token_storage() = token;
}

std::string bearer_token() {
  std::lock_guard<std::mutex> g{token_mutex};
  return token_storage();
}

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

struct http_client::impl {
  http_url url;
  std::string authorization;  // "Bearer …" or empty
  std::chrono::milliseconds timeout;
  asio::io_context ioc;
  beast::tcp_stream stream{ioc};
  beast::flat_buffer buffer;
  bool connected = false;

  // Beast reads at most the buffer's free capacity per recv: from an empty buffer, 512 bytes
  // at a time (a 15 kB answer in ~30 calls). Room for a whole answer makes it one or two.
  impl() { buffer.reserve(64 * 1024); }

  http_result exchange(http::verb verb, const std::string& target, const std::string* body) {
    auto started = std::chrono::steady_clock::now();
    http_result out;
    // A kept-alive connection may have been closed by the server in between: retry once
    // on a fresh connection when a reused one fails.
    for (int attempt = 0; attempt < 2; ++attempt) {
      bool reused = connected;
      beast::error_code ec;
      if (!connected) {
        stream.expires_after(timeout);
        stream.connect(asio::ip::tcp::endpoint(asio::ip::make_address(url.host), url.port), ec);
        if (ec) {
          out.error = "connect: " + ec.message();
          break;
        }
        stream.socket().set_option(asio::ip::tcp::no_delay(true));
        connected = true;
        buffer.clear();
      }
      http::request<http::string_body> req{verb, url.base_path + target, 11};
      req.set(http::field::host, url.host + ":" + std::to_string(url.port));
      req.keep_alive(true);
      if (!authorization.empty())
        req.set(http::field::authorization, authorization);
      if (body) {
        req.set(http::field::content_type, "application/json");
        req.body() = *body;
      }
      req.prepare_payload();
      stream.expires_after(timeout);
      http::write(stream, req, ec);
      http::response_parser<http::string_body> parser;
      parser.body_limit(64 * 1024 * 1024);
      if (!ec)
        http::read(stream, buffer, parser, ec);
      if (ec) {
        close();
        out.error = ec.message();
        if (reused && ec != beast::error::timeout)
          continue;
        break;
      }
      auto& res = parser.get();
      out.status = static_cast<int>(res.result_int());
      out.body = std::move(res.body());
      out.error.clear();
      if (auto it = res.find("X-Cache"); it != res.end())
        out.x_cache = std::string(it->value());
      if (auto it = res.find(http::field::retry_after); it != res.end())
        out.retry_after_s = std::atof(std::string(it->value()).c_str());
      if (!res.keep_alive())
        close();
      break;
    }
    out.elapsed = std::chrono::steady_clock::now() - started;
    return out;
  }

  void close() {
    beast::error_code ignored;
    stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    stream.close();
    connected = false;
  }
};

http_client::http_client(const http_url& url, std::chrono::milliseconds timeout)
    : impl_(std::make_unique<impl>()) {
  impl_->url = url;
  impl_->timeout = timeout;
  if (auto t = bearer_token(); !t.empty())
    impl_->authorization = "Bearer " + t;
}

http_client::~http_client() {
  if (impl_->connected)
    impl_->close();
}

http_result http_client::get(const std::string& target) {
  return impl_->exchange(http::verb::get, target, nullptr);
}

http_result http_client::post_json(const std::string& target, const std::string& body) {
  return impl_->exchange(http::verb::post, target, &body);
}

http_result http_client::request(const std::string& method, const std::string& target,
                                 const std::string& body) {
  return impl_->exchange(http::string_to_verb(method), target, body.empty() ? nullptr : &body);
}

} // namespace joule::bench
