#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "bench/open_loop_client.hpp"
#include "common/percentiles.hpp"

namespace joule::bench {

/// Statistics of one endpoint (or of all requests) in one run.
struct endpoint_stats {
  std::string name;
  uint64_t requests = 0;
  uint64_t ok = 0;          // 2xx
  uint64_t non_2xx = 0;
  uint64_t timeouts = 0;    // includes requests never sent before the drain ended
  uint64_t conn_errors = 0; // no response, not a timeout
  uint64_t cache_hit = 0, cache_miss = 0, cache_bypass = 0;
  std::map<int, uint64_t> statuses;
  latency_summary latency;  // over every request, failed ones included
  double achieved_rate = 0; // 2xx per second

  uint64_t errors() const { return non_2xx + timeouts + conn_errors; }
};

struct run_stats {
  std::string label;        // e.g. "cache", "nocache"
  double offered_rate = 0;
  double elapsed_s = 0;
  std::vector<endpoint_stats> endpoints;
  endpoint_stats all;
};

run_stats summarize_run(const std::string& label, const std::vector<request_outcome>& outcomes,
                        const std::vector<std::string>& endpoint_names, double offered_rate,
                        double elapsed_s);

/// Fixed-width text table: one line per endpoint plus "all".
std::string format_run_table(const run_stats& run);
/// Markdown table with the same columns.
std::string format_run_markdown(const run_stats& run);
/// JSON object {"label","offered_rate","elapsed_s","all":{…},"endpoints":{name:{…}}}.
std::string run_stats_json(const run_stats& run);

} // namespace joule::bench
