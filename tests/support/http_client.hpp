#pragma once
// A blocking HTTP/1.1 client for tests (one request per call, new connection each time).

#include <chrono>
#include <cstdint>
#include <map>
#include <string>

namespace joule::test {

struct http_result {
  int status = 0;  // 0: connection failed
  std::string body;
  std::map<std::string, std::string> headers;  // lower-case names
  double seconds = 0;
};

http_result http_request(std::uint16_t port, const std::string& method, const std::string& target,
                         const std::string& body = {},
                         std::chrono::milliseconds timeout = std::chrono::seconds(10));

/// The same with extra request headers (name → value).
http_result http_request(std::uint16_t port, const std::string& method, const std::string& target,
                         const std::string& body,
                         const std::map<std::string, std::string>& headers,
                         std::chrono::milliseconds timeout = std::chrono::seconds(10));

inline http_result http_get(std::uint16_t port, const std::string& target) {
  return http_request(port, "GET", target);
}

} // namespace joule::test
