#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "sim/fleet.hpp"

namespace joule::bench {

struct live_options {
  std::string conninfo;   // COPY straight into PostgreSQL when target_url is empty
  std::string target_url; // otherwise POST /telemetry to this server
  int64_t interval_s = 10;
  std::chrono::milliseconds duration{0}; // 0 = until SIGINT/SIGTERM
  size_t batch = 1000;    // readings per POST
  bool progress = false;
};

struct live_result {
  uint64_t ticks = 0;
  uint64_t readings_sent = 0;
  uint64_t readings_accepted = 0; // committed rows (COPY) or accepted counts (HTTP)
  uint64_t failed_batches = 0;
  uint64_t late_ticks = 0;        // ticks written after the next one was already due
  std::string last_error;
  double seconds = 0;
};

/// Every interval (aligned to the wall clock), one reading per device stamped with that
/// tick. Ends after `duration` or on a stop signal, after finishing the tick in progress.
/// HTTP errors are counted, not fatal; a PostgreSQL error is fatal (std::runtime_error).
live_result run_live(const fleet& f, const live_options& options);

} // namespace joule::bench
