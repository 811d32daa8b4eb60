#include "stub_server.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <algorithm>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace joule::bench::test {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Path segment after `prefix`, up to the next '/'.
std::string segment_after(const std::string& path, const std::string& prefix) {
  auto rest = path.substr(prefix.size());
  return rest.substr(0, rest.find('/'));
}

std::pair<int, std::string> answer(const http::request<http::string_body>& req) {
  std::string target(req.target());
  const std::string path = target.substr(0, target.find('?'));
  const std::string fresh = "\"fresh_as_of\":\"2026-11-27T12:00:00Z\"";
  if (req.method() == http::verb::post && path == "/telemetry") {
    size_t n = 0;
    for (size_t pos = 0; (pos = req.body().find("\"device_id\"", pos)) != std::string::npos; ++pos)
      ++n;
    return {202, "{\"accepted\":" + std::to_string(n) + "}"};
  }
  if (req.method() != http::verb::get)
    return {405, R"({"error":{"code":"method_not_allowed","message":"GET only"}})"};
  const std::string households = "/analytics/households/", devices = "/analytics/devices/";
  if (path.rfind(households, 0) == 0 && ends_with(path, "/energy"))
    return {200, "{\"household_id\":\"" + segment_after(path, households) +
                     "\",\"step\":\"5m\",\"start\":\"2026-11-26T12:00:00Z\",\"end\":"
                     "\"2026-11-27T12:00:00Z\"," + fresh +
                     ",\"series\":[{\"t\":\"2026-11-27T11:50:00Z\",\"v\":12.5},"
                     "{\"t\":\"2026-11-27T11:55:00Z\",\"v\":13.0}]}"};
  if (path.rfind(households, 0) == 0 && ends_with(path, "/top-devices"))
    return {200, "{\"household_id\":\"" + segment_after(path, households) +
                     "\",\"window\":{\"start\":\"2026-11-26T12:00:00Z\",\"end\":"
                     "\"2026-11-27T12:00:00Z\"}," + fresh +
                     ",\"devices\":[{\"device_id\":\"00000000-0000-4000-8000-000000000001\","
                     "\"energy_wh\":321.5}]}"};
  if (path.rfind(devices, 0) == 0 && ends_with(path, "/power"))
    return {200, "{\"device_id\":\"" + segment_after(path, devices) +
                     "\",\"step\":\"1m\",\"start\":\"2026-11-27T11:00:00Z\",\"end\":"
                     "\"2026-11-27T12:00:00Z\"," + fresh +
                     ",\"series\":[{\"t\":\"2026-11-27T11:59:00Z\",\"avg\":100.0,\"max\":150.0}]}"};
  return {404, R"({"error":{"code":"not_found","message":"no such route"}})"};
}

} // namespace

struct stub_server::impl {
  asio::io_context ioc;
  tcp::acceptor acceptor{ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)};
  std::chrono::milliseconds delay{0};
  std::atomic<bool> stopping{false};
  std::atomic<uint64_t> requests{0};
  std::map<std::string, uint64_t> by_authorization;  // guarded by mutex
  std::thread accept_thread;
  std::mutex mutex;
  std::vector<std::thread> sessions;
  std::vector<tcp::socket*> open_sockets;

  void accept_loop() {
    while (!stopping) {
      beast::error_code ec;
      tcp::socket socket(ioc);
      acceptor.accept(socket, ec);
      if (ec || stopping)
        return;
      std::lock_guard<std::mutex> lock(mutex);
      sessions.emplace_back([this, s = std::move(socket)]() mutable { serve(s); });
    }
  }

  void serve(tcp::socket& socket) {
    {
      std::lock_guard<std::mutex> lock(mutex);
      open_sockets.push_back(&socket);
    }
    beast::flat_buffer buffer;
    for (;;) {
      http::request<http::string_body> req;
      beast::error_code ec;
      http::read(socket, buffer, req, ec);
      if (ec)
        break;
      ++requests;
      {
        std::lock_guard<std::mutex> lock(mutex);
        ++by_authorization[std::string(req[http::field::authorization])];
      }
      if (delay.count() > 0)
        std::this_thread::sleep_for(delay);
      auto [status, body] = answer(req);
      http::response<http::string_body> res{static_cast<http::status>(status), req.version()};
      res.set(http::field::content_type, "application/json");
      res.set("X-Cache", requests % 2 ? "hit" : "miss");
      res.keep_alive(req.keep_alive());
      res.body() = std::move(body);
      res.prepare_payload();
      http::write(socket, res, ec);
      if (ec || !req.keep_alive())
        break;
    }
    std::lock_guard<std::mutex> lock(mutex);
    open_sockets.erase(std::remove(open_sockets.begin(), open_sockets.end(), &socket),
                       open_sockets.end());
    beast::error_code ignored;
    socket.shutdown(tcp::socket::shutdown_both, ignored);
  }
};

stub_server::stub_server(std::chrono::milliseconds delay) : impl_(std::make_unique<impl>()) {
  impl_->delay = delay;
  impl_->accept_thread = std::thread([this] { impl_->accept_loop(); });
}

stub_server::~stub_server() {
  impl_->stopping = true;
  beast::error_code ignored;
  // Wake the blocking accept with a connection of our own, then end every session.
  {
    tcp::socket poke(impl_->ioc);
    poke.connect(impl_->acceptor.local_endpoint(), ignored);
  }
  impl_->accept_thread.join();
  {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    for (auto* s : impl_->open_sockets)
      s->shutdown(tcp::socket::shutdown_both, ignored);
  }
  for (auto& t : impl_->sessions)
    t.join();
}

uint16_t stub_server::port() const { return impl_->acceptor.local_endpoint().port(); }
uint64_t stub_server::requests() const { return impl_->requests; }

uint64_t stub_server::requests_with_authorization(const std::string& value) const {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  auto it = impl_->by_authorization.find(value);
  return it == impl_->by_authorization.end() ? 0 : it->second;
}

} // namespace joule::bench::test
