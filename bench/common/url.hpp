#pragma once

#include <cstdint>
#include <string>

namespace joule::bench {

/// An http:// URL reduced to what the benchmark needs. Only loopback targets are accepted:
/// the load generators must never be pointed at another machine by accident.
struct http_url {
  std::string host; // "127.0.0.1"
  uint16_t port = 80;
  std::string base_path; // without trailing '/', usually empty

  /// Throws std::invalid_argument for a non-http URL or a host other than 127.0.0.1/localhost.
  static http_url parse(const std::string& text);
};

} // namespace joule::bench
