#pragma once
// A private redis-server on a free loopback port that a test can stop and start again.

#include <cstdint>
#include <string>

namespace joule::test {

class redis_process {
public:
  redis_process();  // picks a free port, does not start
  ~redis_process();
  void start();
  void stop();
  std::uint16_t port() const { return port_; }
  std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_); }
  /// Number of keys (DBSIZE) via redis-cli; -1 if not reachable.
  long dbsize() const;

private:
  std::uint16_t port_ = 0;
  std::string dir_;
  bool running_ = false;
};

/// A TCP port on 127.0.0.1 that nothing listens on right now.
std::uint16_t free_port();

} // namespace joule::test
