#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bench/alert_rules.hpp"

namespace joule::bench {

/// One webhook the sink received (fields empty when the body was not a Joule payload).
struct webhook_arrival {
  std::chrono::steady_clock::time_point steady;
  double system_s = 0;  // wall clock, seconds since the epoch (time_format.hpp now_seconds)
  std::string header_alert_id; // X-Joule-Alert-Id
  webhook_fields body;
};

/// A webhook receiver on 127.0.0.1 (ephemeral port): a small asynchronous Beast HTTP server
/// on its own thread that answers 200 to every POST (405 otherwise, keep-alive honoured) and
/// records each arrival when its request has been read completely. Stops and joins on
/// destruction.
class webhook_sink {
public:
  webhook_sink();
  ~webhook_sink();
  webhook_sink(const webhook_sink&) = delete;
  webhook_sink& operator=(const webhook_sink&) = delete;

  uint16_t port() const;
  /// "http://127.0.0.1:PORT/joule-bench/webhook".
  std::string url() const;
  uint64_t received() const;

  /// The first arrival with this rule id and status, waiting up to `timeout` for it.
  std::optional<webhook_arrival> wait_for(const std::string& rule_id, const std::string& status,
                                          std::chrono::milliseconds timeout) const;
  std::vector<webhook_arrival> arrivals() const;

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace joule::bench
