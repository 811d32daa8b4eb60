#pragma once

#include <cstdint>
#include <vector>

namespace joule::bench {

/// Latency distribution of one set of requests, in milliseconds.
struct latency_summary {
  uint64_t count = 0;
  double p50_ms = 0;
  double p95_ms = 0;
  double p99_ms = 0;
  double max_ms = 0;
  double mean_ms = 0;
};

/// Nearest-rank percentile (the smallest value with at least q of the samples at or below
/// it), q in (0, 1]. `sorted` must be ascending; returns 0 for no samples.
int64_t percentile_nearest_rank(const std::vector<int64_t>& sorted, double q);

/// Sorts `latencies_ns` in place and summarises it.
latency_summary summarize_latencies(std::vector<int64_t>& latencies_ns);

} // namespace joule::bench
