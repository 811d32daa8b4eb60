#pragma once
// An asynchronous HTTP(S) client for webhook POSTs (Boost.Beast over Asio), running on its
// own I/O thread so that no CAF scheduler thread ever blocks on the network. One connection
// per request (`Connection: close`): webhooks are rare and their receivers heterogeneous.
// Redirects are not followed (a 3xx is an answer). Beast stays out of this header.
//
// SSRF: the host is resolved once per attempt, every address is checked against
// target_policy, and the socket connects only to the addresses that passed — never to a
// name, so a second DNS answer (rebinding) cannot slip a private address in between check
// and connect. Host header, SNI and certificate verification keep the name.

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace joule::rules {

struct webhook_request {
  std::string url;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  std::chrono::milliseconds timeout{5000};  // the whole attempt: resolve to last byte
  bool allow_private_targets = false;       // alerts.allow_private_targets
};

struct webhook_response {
  int status = 0;  // 0: no HTTP response (see error)
  /// When status is 0, the class of failure — what /alerts/events may show: invalid_url,
  /// resolve_failed, target_forbidden (every address the name resolved to is refused),
  /// connect_failed, tls_failed, send_failed, read_failed, timeout.
  std::string error;
  /// The underlying reason (resolver/socket/TLS message, the refused address): for the
  /// server log only, never stored — it describes the receiver's network.
  std::string detail;
};

/// Sends one request; `done` is called exactly once, on the client's I/O thread.
using webhook_sender =
    std::function<void(webhook_request, std::function<void(webhook_response)> done)>;

class webhook_client {
public:
  webhook_client();
  /// Cancels what is in flight (callbacks are dropped, not called) and joins the thread.
  ~webhook_client();
  webhook_client(const webhook_client&) = delete;
  webhook_client& operator=(const webhook_client&) = delete;

  void post(webhook_request req, std::function<void(webhook_response)> done);

  struct impl;

private:
  std::shared_ptr<impl> impl_;
};

} // namespace joule::rules
