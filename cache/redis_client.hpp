#pragma once
// A blocking Redis connection (hiredis) with timeouts. Not thread-safe: one owner thread.
// After any error the context is dropped and the next call reconnects.

#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>

struct redisContext;

namespace joule::cache {

struct redis_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class redis_client {
public:
  redis_client(std::string host, std::uint16_t port, std::chrono::milliseconds timeout);
  ~redis_client();
  redis_client(const redis_client&) = delete;
  redis_client& operator=(const redis_client&) = delete;

  /// The value, or nullopt when the key does not exist. Throws redis_error.
  std::optional<std::string> get(const std::string& key);
  /// SET key value PX ttl_ms. Throws redis_error.
  void set(const std::string& key, const std::string& value, std::int64_t ttl_ms);
  /// PING. Throws redis_error.
  void ping();

private:
  void connect();
  void drop();
  std::string host_;
  std::uint16_t port_;
  std::chrono::milliseconds timeout_;
  redisContext* ctx_ = nullptr;
};

/// Parses redis://host:port; false if malformed.
bool parse_redis_url(const std::string& url, std::string& host, std::uint16_t& port);

} // namespace joule::cache
