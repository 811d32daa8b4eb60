#pragma once
// A raw TCP connection for HTTP tests that need control over bytes and timing: pipelined
// requests written back to back, half a request line, a half-close, waiting for the server
// to close.

#include <chrono>
#include <cstdint>
#include <string>

#include "tests/support/http_client.hpp"

namespace joule::test {

class raw_connection {
public:
  /// Connects to 127.0.0.1:port (blocking); check connected().
  explicit raw_connection(std::uint16_t port);
  ~raw_connection();
  raw_connection(const raw_connection&) = delete;
  raw_connection& operator=(const raw_connection&) = delete;

  bool connected() const { return fd_ >= 0; }
  /// Writes every byte (false if the connection broke).
  bool send(const std::string& bytes);
  /// No more bytes from us (the server may still answer).
  void shutdown_send();
  /// Reads one response (status line, headers, Content-Length body). status 0 when the
  /// connection closed or `timeout` passed first.
  http_result read_response(std::chrono::milliseconds timeout = std::chrono::seconds(10));
  /// True when the server closes the connection (EOF or reset) within `timeout`; bytes that
  /// arrive meanwhile are discarded.
  bool wait_closed(std::chrono::milliseconds timeout);
  void close();

private:
  /// Reads more into buf_; false on EOF, error or timeout.
  bool fill(std::chrono::steady_clock::time_point until);

  int fd_ = -1;
  std::string buf_;
};

/// `GET target HTTP/1.1` with a Host header, ready to be written.
std::string get_request(const std::string& target, const std::string& extra_headers = {});

} // namespace joule::test
