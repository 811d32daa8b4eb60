#include "bench/rest_client.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <cstdlib>

namespace joule::bench {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

struct rest_client::impl {
  http_url url;
  std::chrono::milliseconds timeout;
  asio::io_context ioc;
  beast::tcp_stream stream{ioc};
  beast::flat_buffer buffer;
  bool connected = false;

  void close() {
    beast::error_code ignored;
    stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    stream.close();
    connected = false;
  }
};

rest_client::rest_client(const http_url& url, std::chrono::milliseconds timeout)
    : impl_(std::make_unique<impl>()) {
  impl_->url = url;
  impl_->timeout = timeout;
}

rest_client::~rest_client() {
  if (impl_->connected)
    impl_->close();
}

http_result rest_client::request(const std::string& method, const std::string& target,
                                 const std::string& body) {
  auto& s = *impl_;
  const auto started = std::chrono::steady_clock::now();
  http_result out;
  const auto verb = http::string_to_verb(method);
  if (verb == http::verb::unknown) {
    out.error = "unknown method " + method;
    return out;
  }
  for (int attempt = 0; attempt < 2; ++attempt) {
    const bool reused = s.connected;
    beast::error_code ec;
    if (!s.connected) {
      s.stream.expires_after(s.timeout);
      s.stream.connect(asio::ip::tcp::endpoint(asio::ip::make_address(s.url.host), s.url.port), ec);
      if (ec) {
        out.error = "connect: " + ec.message();
        break;
      }
      s.stream.socket().set_option(asio::ip::tcp::no_delay(true));
      s.connected = true;
      s.buffer.clear();
    }
    http::request<http::string_body> req{verb, s.url.base_path + target, 11};
    req.set(http::field::host, s.url.host + ":" + std::to_string(s.url.port));
    req.keep_alive(true);
    if (!body.empty()) {
      req.set(http::field::content_type, "application/json");
      req.body() = body;
    }
    req.prepare_payload();
    s.stream.expires_after(s.timeout);
    http::write(s.stream, req, ec);
    http::response_parser<http::string_body> parser;
    parser.body_limit(16 * 1024 * 1024);
    if (!ec)
      http::read(s.stream, s.buffer, parser, ec);
    if (ec) {
      s.close();
      out.error = ec.message();
      if (reused && ec != beast::error::timeout)
        continue;
      break;
    }
    auto& res = parser.get();
    out.status = static_cast<int>(res.result_int());
    out.body = std::move(res.body());
    out.error.clear();
    if (auto it = res.find(http::field::retry_after); it != res.end())
      out.retry_after_s = std::atof(std::string(it->value()).c_str());
    if (!res.keep_alive())
      s.close();
    break;
  }
  out.elapsed = std::chrono::steady_clock::now() - started;
  return out;
}

} // namespace joule::bench
