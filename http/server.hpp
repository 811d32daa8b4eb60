#pragma once
// The HTTP/1.1 server (Boost.Beast): accepts, parses with a body limit, hands each request to
// a handler and writes the reply when it comes back. Socket I/O only: no routing, no actors.
// Beast stays out of this header so that including it is cheap.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace joule::http {

struct request {
  std::string method;
  std::string target;  // path and query, still percent-encoded
  std::string body;
  std::string content_type;
  std::vector<std::pair<std::string, std::string>> headers;  // as received
  std::string remote_addr;                                   // the peer's IP address

  /// The first header named `name` (case-insensitive), or "".
  std::string header(const std::string& name) const;
};

struct response {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
};

/// Called exactly once per request, from any thread.
using respond_fn = std::function<void(response)>;
/// Runs on an I/O thread; must not block (hand work to actors and return).
using handler_fn = std::function<void(request&&, respond_fn)>;

struct server_config {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8080;  // 0: any free port
  int threads = 1;
  std::uint64_t body_limit = 1 << 20;
  std::chrono::milliseconds request_timeout{5000};
  std::chrono::milliseconds idle_timeout{30000};
  std::chrono::milliseconds drain_timeout{5000};
};

class server {
public:
  server(server_config cfg, handler_fn handler);
  ~server();
  /// Binds and starts the I/O threads; returns the bound port. Throws on bind failure.
  std::uint16_t start();
  /// Graceful stop: stop accepting, let in-flight requests finish (up to drain_timeout),
  /// then close connections and join the threads.
  void stop();
  /// Requests being handled right now.
  int in_flight() const;

  struct impl;

private:
  std::unique_ptr<impl> impl_;
};

} // namespace joule::http
