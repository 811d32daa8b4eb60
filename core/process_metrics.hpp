#pragma once
// Metrics about the process itself, read from /proc when /metrics is scraped (the standard
// `process_*` names every Prometheus client library exports), and `joule_build_info`.

#include <optional>
#include <string>

namespace joule::metrics {

/// What /proc says about this process; a field is empty when it cannot be read.
struct process_sample {
  std::optional<double> cpu_seconds;        // user + system time
  std::optional<double> resident_bytes;
  std::optional<double> virtual_bytes;
  std::optional<double> start_time_seconds; // Unix time
  std::optional<double> open_fds;
  std::optional<double> max_fds;            // soft RLIMIT_NOFILE
  std::optional<double> threads;
};

/// Reads /proc/self/{stat,fd} and /proc/stat (Linux); other systems give an empty sample.
process_sample sample_process();

/// Appends the sample (`process_cpu_seconds_total`, `process_resident_memory_bytes`,
/// `process_virtual_memory_bytes`, `process_start_time_seconds`, `process_open_fds`,
/// `process_max_fds`, `joule_process_threads`) and `joule_build_info{version,revision}` 1 in
/// the text exposition format.
void render_process(std::string& out);

/// The version this binary was built as (CMake's project version) and its git revision
/// ("unknown" outside a git checkout).
const char* build_version();
const char* build_revision();

} // namespace joule::metrics
