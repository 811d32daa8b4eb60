#pragma once
// A webhook receiver for tests: a small Beast server on 127.0.0.1 (thread per connection)
// that records every POST and answers with a scripted status, or holds the request open
// (a slow or hung receiver). Can be started on a port chosen earlier (receiver down, then up).

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace joule::rules::test {

struct received_webhook {
  std::string target;
  std::string alert_id;   // X-Joule-Alert-Id
  std::string timestamp;  // X-Joule-Timestamp
  std::string signature;  // X-Joule-Signature
  std::string body;
  int answered = 0;       // status sent back; 0 while held or when the sender went away
  std::chrono::steady_clock::time_point at;
};

class webhook_receiver {
public:
  /// Listens on `port` (0: any free port).
  explicit webhook_receiver(std::uint16_t port = 0);
  /// Releases held requests, closes every connection and joins the threads.
  ~webhook_receiver();
  webhook_receiver(const webhook_receiver&) = delete;
  webhook_receiver& operator=(const webhook_receiver&) = delete;

  std::uint16_t port() const;
  /// Status for the next answers (default 200).
  void answer_with(int status);
  /// While on, requests are recorded and then kept waiting without an answer.
  void hold(bool on);
  std::vector<received_webhook> requests() const;
  std::size_t count() const;

  struct impl;

private:
  std::unique_ptr<impl> impl_;
};

/// A free port (bound, read and released): for "the receiver is down" tests.
std::uint16_t reserve_port();

} // namespace joule::rules::test
