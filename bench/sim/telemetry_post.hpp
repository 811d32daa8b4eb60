#pragma once

#include <chrono>
#include <string>

#include "common/http_client.hpp"

namespace joule::bench {

struct post_outcome {
  int status = 0;              // last HTTP status, 0 = transport failure
  long long accepted = 0;      // readings the server accepted (202 {"accepted": n})
  int retries = 0;             // 503 answers honoured with a wait
  std::string error;           // empty when accepted
};

/// POSTs one /telemetry batch. A 503 (or 429) is retried after its Retry-After (capped at
/// `max_wait` each, at most `max_retries` times, skipped once a stop is requested); any
/// other non-202 answer is returned as an error with the start of the body.
post_outcome post_telemetry(http_client& client, const std::string& body, int max_retries,
                            std::chrono::milliseconds max_wait);

} // namespace joule::bench
