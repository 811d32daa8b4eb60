#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "common/cli_args.hpp"
#include "common/http_client.hpp"
#include "common/url.hpp"

namespace joule::bench {

/// One request of a load run. An empty body means GET, otherwise POST application/json.
struct load_request {
  std::string target; // path and query
  int endpoint = 0;   // index into the caller's endpoint names, for per-endpoint statistics
  std::string body;
};

enum class cache_outcome : uint8_t { none, hit, miss, bypass };

struct request_outcome {
  int endpoint = 0;
  int status = 0;          // HTTP status; 0 = no response (timeout, connection error, unsent)
  bool timed_out = false;  // no response within the timeout, or never sent before the drain ended
  cache_outcome cache = cache_outcome::none;
  int64_t latency_ns = 0;  // completion − intended send time (includes waiting for a connection)
};

struct open_loop_options {
  http_url url;
  double rate = 1000;                        // offered requests per second
  std::chrono::nanoseconds duration = std::chrono::seconds(10);
  int connections = 64;                      // keep-alive pool size (split across threads)
  int threads = 1;                           // 1–2; each runs its own io_context and pool
  std::chrono::milliseconds timeout{2000};   // per request, from the moment it is sent
  std::string bearer = bearer_token();       // API token sent with every request ("" = none)
};

/// The options every load scenario takes from its command line: --connections (default
/// `connections`), --threads, --timeout and --token.
open_loop_options load_options(const cli_args& a, const http_url& url, double rate,
                               std::chrono::nanoseconds duration, int connections = 64);

struct open_loop_run {
  std::vector<request_outcome> outcomes; // one per scheduled request
  double elapsed_s = 0;                  // t0 → last completion
};

/// Open-loop load: request i is due at t0 + i/rate whatever happened before (see
/// open_loop_schedule). Due requests queue for a free connection; the queue wait counts in
/// their latency. Request i uses requests[i % requests.size()]. After the schedule ends,
/// queued requests get `timeout` more to be sent; the rest are recorded as unsent timeouts.
/// Bounded in time: at most duration + 2 × timeout + connect time.
/// Throws std::invalid_argument on bad options or an empty request list.
open_loop_run run_open_loop(const open_loop_options& options,
                            const std::vector<load_request>& requests);

} // namespace joule::bench
