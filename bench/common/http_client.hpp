#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "common/url.hpp"

namespace joule::bench {

/// One response, or a transport failure (status 0, `error` says why).
struct http_result {
  int status = 0;
  std::string body;
  std::string x_cache;       // value of the X-Cache header, empty when absent
  double retry_after_s = -1; // Retry-After in seconds, -1 when absent
  std::string error;
  std::chrono::nanoseconds elapsed{0};
};

/// The API token every client of this process sends as `Authorization: Bearer …` (empty:
/// none). Starts as the environment variable JOULE_TOKEN; `--token` options set it.
void set_bearer_token(const std::string& token);
std::string bearer_token();

/// A blocking HTTP/1.1 client over one keep-alive connection (Beast), reconnecting after
/// any failure. For closed-loop uses only (probes, sequential comparisons, the simulator's
/// POSTs); the open-loop load generator has its own asynchronous engine.
class http_client {
public:
  /// Sends bearer_token() (as it is at construction) with every request.
  http_client(const http_url& url, std::chrono::milliseconds timeout);
  ~http_client();
  http_client(const http_client&) = delete;
  http_client& operator=(const http_client&) = delete;

  /// `target` is the path and query, e.g. "/analytics/devices/…/power?step=1m".
  http_result get(const std::string& target);
  http_result post_json(const std::string& target, const std::string& body);
  /// Any method ("GET", "POST", "PUT", "DELETE"); an empty body sends none.
  http_result request(const std::string& method, const std::string& target,
                      const std::string& body = {});

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace joule::bench
