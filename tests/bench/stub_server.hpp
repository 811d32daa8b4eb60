#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

namespace joule::bench::test {

/// A tiny HTTP server on 127.0.0.1 (ephemeral port) that answers the four analytics
/// endpoints with fixed-shape JSON (the ARCHITECTURE.md §5 contract) and POST /telemetry
/// with 202 {"accepted": n}. Only for exercising the benchmark client; one thread per
/// connection. Stops and joins its threads on destruction.
class stub_server {
public:
  /// `delay`: how long each answer takes (simulates a slow server).
  explicit stub_server(std::chrono::milliseconds delay = std::chrono::milliseconds(0));
  ~stub_server();
  stub_server(const stub_server&) = delete;
  stub_server& operator=(const stub_server&) = delete;

  uint16_t port() const;
  uint64_t requests() const;
  /// Requests whose Authorization header was exactly `value` ("" counts those without one).
  uint64_t requests_with_authorization(const std::string& value) const;

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace joule::bench::test
