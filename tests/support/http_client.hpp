#pragma once
// A blocking HTTP/1.1 client for tests (one request per call, new connection each time).

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

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

using header_list = std::map<std::string, std::string>;

/// The same (the name the auth tests use).
inline http_result http_request_with(std::uint16_t port, const std::string& method,
                                     const std::string& target, const std::string& body,
                                     const header_list& headers,
                                     std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  return http_request(port, method, target, body, headers, timeout);
}

/// `Authorization: Bearer <token>` (no header when `token` is empty).
inline header_list bearer(const std::string& token) {
  if (token.empty())
    return {};
  return {{"Authorization", "Bearer " + token}};
}

inline http_result http_get(std::uint16_t port, const std::string& target) {
  return http_request(port, "GET", target);
}

} // namespace joule::test
