#include "common/percentiles.hpp"

#include <algorithm>
#include <cmath>

namespace joule::bench {

int64_t percentile_nearest_rank(const std::vector<int64_t>& sorted, double q) {
  if (sorted.empty())
    return 0;
  q = std::clamp(q, 0.0, 1.0);
  auto rank = static_cast<size_t>(std::ceil(q * static_cast<double>(sorted.size())));
  rank = std::clamp<size_t>(rank, 1, sorted.size());
  return sorted[rank - 1];
}

latency_summary summarize_latencies(std::vector<int64_t>& latencies_ns) {
  latency_summary s;
  if (latencies_ns.empty())
    return s;
  std::sort(latencies_ns.begin(), latencies_ns.end());
  constexpr double ns_per_ms = 1e6;
  s.count = latencies_ns.size();
  s.p50_ms = static_cast<double>(percentile_nearest_rank(latencies_ns, 0.50)) / ns_per_ms;
  s.p95_ms = static_cast<double>(percentile_nearest_rank(latencies_ns, 0.95)) / ns_per_ms;
  s.p99_ms = static_cast<double>(percentile_nearest_rank(latencies_ns, 0.99)) / ns_per_ms;
  s.max_ms = static_cast<double>(latencies_ns.back()) / ns_per_ms;
  long double sum = 0;
  for (auto v : latencies_ns)
    sum += v;
  s.mean_ms = static_cast<double>(sum / static_cast<long double>(latencies_ns.size())) / ns_per_ms;
  return s;
}

} // namespace joule::bench
