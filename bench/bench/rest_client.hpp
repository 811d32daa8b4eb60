#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "common/http_client.hpp"

namespace joule::bench {

/// Blocking keep-alive HTTP/1.1 client for the JSON API's writes (POST, PUT, DELETE), which
/// common/http_client does not cover. Reconnects after a failure; a reused connection that
/// fails is retried once on a fresh one.
class rest_client {
public:
  rest_client(const http_url& url, std::chrono::milliseconds timeout);
  ~rest_client();
  rest_client(const rest_client&) = delete;
  rest_client& operator=(const rest_client&) = delete;

  /// `method` is "GET", "POST", "PUT" or "DELETE"; an empty body sends none.
  http_result request(const std::string& method, const std::string& target,
                      const std::string& body = {});

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace joule::bench
