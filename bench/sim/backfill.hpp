#pragma once

#include <cstdint>
#include <string>

#include "common/time_format.hpp"
#include "sim/fleet.hpp"

namespace joule::bench {

struct backfill_options {
  std::string conninfo;
  unix_seconds start = 0; // first reading; a multiple of interval_s
  unix_seconds end = 0;   // exclusive
  int64_t interval_s = 10;
  int workers = 2;        // connections, each writing a contiguous slice of time
  uint64_t rows_per_transaction = 200'000;
  bool progress = false;  // rows, rows/s and ETA on stderr (core/progress.hpp)
};

struct backfill_result {
  uint64_t rows = 0; // as counted by the server's COPY replies
  double seconds = 0;
};

/// Writes one reading per device per interval for every interval start in [start, end),
/// straight into `telemetry` with binary COPY. Each worker commits about every
/// `rows_per_transaction` rows (at a tick boundary). Throws std::runtime_error on the first
/// failure of any worker; what was committed before stays.
backfill_result run_backfill(const fleet& f, const backfill_options& options);

} // namespace joule::bench
