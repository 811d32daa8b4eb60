#pragma once
// A TCP forwarder on 127.0.0.1 between the server and PostgreSQL, so a test can make the
// database unreachable (cut) and bring it back (restore) without touching the real server.

#include <cstdint>
#include <memory>

namespace joule::test {

class tcp_proxy {
public:
  explicit tcp_proxy(std::uint16_t upstream_port);
  ~tcp_proxy();
  std::uint16_t port() const;
  /// Closes every forwarded connection and refuses new ones.
  void cut();
  /// Accepts and forwards again.
  void restore();

  struct impl;

private:
  std::unique_ptr<impl> impl_;
};

} // namespace joule::test
