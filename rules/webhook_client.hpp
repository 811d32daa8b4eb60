#pragma once
// An asynchronous HTTP(S) client for webhook POSTs (Boost.Beast over Asio), running on its
// own I/O thread so that no CAF scheduler thread ever blocks on the network. One connection
// per request (`Connection: close`): webhooks are rare and their receivers heterogeneous.
// Beast stays out of this header.

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
};

struct webhook_response {
  int status = 0;     // 0: no HTTP response (see error)
  std::string error;  // network error, timeout, TLS failure, bad URL
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
