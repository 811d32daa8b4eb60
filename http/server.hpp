#pragma once
// The HTTP/1.1 listener (Boost.Beast). Socket I/O only: it accepts, parses with limits, reads
// ahead a bounded number of pipelined requests and writes the answers; everything a request
// means happens in the connection's session actor (http/session_actor.hpp), which the server
// spawns for each accepted connection.
//
// Why the server spawns the session actors itself instead of a supervised listener actor: a
// session cannot be restarted (its connection is its identity), so supervision would add a
// message hop per accepted connection and buy nothing; a session's failure boundary is the
// session (a throwing handler fails one request, a failing session closes one connection).
// Shutdown order stays explicit: stop() stops accepting, drains, then closes every connection,
// which ends every session actor; only then may the actor system go (app::stop does so).
// Beast stays out of this header so that including it is cheap.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "config/ip_ranges.hpp"
#include "http/handler.hpp"

namespace caf {
class actor_system;
} // namespace caf

namespace joule::http {

struct server_config {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8080;  // 0: any free port
  int threads = 1;
  std::uint64_t body_limit = 1 << 20;
  /// Largest request head (request line + header fields); larger → 431, then close.
  std::uint32_t header_limit = 16 * 1024;
  /// A request head must arrive whole this long after its first byte, or the connection
  /// closes (slow-header clients).
  std::chrono::milliseconds header_timeout{10000};
  std::chrono::milliseconds request_timeout{5000};
  std::chrono::milliseconds idle_timeout{30000};
  std::chrono::milliseconds drain_timeout{5000};
  /// Requests read ahead on one connection before the server stops reading it.
  std::size_t pipeline_limit = 16;
  /// Open connections beyond which a new one is answered 503 and closed.
  int max_connections = 10000;
  /// Peers whose X-Forwarded-For names the client (http/forwarded.hpp); empty: none.
  config::ip_ranges trusted_proxies;
  /// For `Expect: 100-continue`: called on the I/O thread with the request head (no body);
  /// a response refuses the request before the client sends its body (then the connection
  /// closes), nullopt lets it continue. Must be thread-safe and must not block. Unset: every
  /// request within the body limit continues.
  std::function<std::optional<response>(const request& head)> expect_check;
};

class server {
public:
  /// Session actors are spawned in `sys`, which must outlive the server.
  server(caf::actor_system& sys, server_config cfg, handler_fn handler);
  ~server();
  /// Binds and starts the I/O threads; returns the bound port. Throws on bind failure.
  std::uint16_t start();
  /// Graceful stop: stop accepting, let in-flight requests finish (up to drain_timeout),
  /// then close connections (ending their session actors) and join the threads.
  void stop();
  /// Requests read and not yet answered, over all connections.
  int in_flight() const;
  /// Open connections (each with its session actor).
  int connections() const;

  struct impl;

private:
  std::unique_ptr<impl> impl_;
};

} // namespace joule::http
