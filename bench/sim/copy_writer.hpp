#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/time_format.hpp"
#include "common/uuid.hpp"

namespace joule::bench {

/// Writes telemetry rows with `COPY telemetry (...) FROM STDIN (FORMAT binary)` over its own
/// libpq connection. Binary, because the server parses it several times cheaper than text
/// (uuid and timestamptz input functions dominate a text COPY) and on this machine the
/// server's CPU is the bottleneck. Rows go through the partitioned parent, so the rollup
/// invalidation triggers see them. Not thread-safe: one writer per thread.
class telemetry_copy_writer {
public:
  /// Connects; throws std::runtime_error with libpq's message on failure.
  explicit telemetry_copy_writer(const std::string& conninfo);
  ~telemetry_copy_writer();
  telemetry_copy_writer(const telemetry_copy_writer&) = delete;
  telemetry_copy_writer& operator=(const telemetry_copy_writer&) = delete;

  /// BEGIN and start the COPY.
  void begin();
  /// Appends one row (buffered; sent in ~1 MB chunks).
  void add(unix_seconds ts, const uuid& device_id, const uuid& household_id, double power_w,
           double energy_wh);
  /// Ends the COPY and COMMITs; returns the rows the server reported for the COPY.
  uint64_t commit();
  /// Runs one statement outside a COPY (throws std::runtime_error on failure).
  void exec(const std::string& sql);

private:
  void flush();
  void check_copy(int rc, const char* what);

  struct pg_conn_deleter {
    void operator()(void* conn) const;
  };
  std::unique_ptr<void, pg_conn_deleter> conn_;
  std::vector<char> buffer_; // fixed size; used_ bytes are pending
  size_t used_ = 0;
  bool in_copy_ = false;
};

} // namespace joule::bench
