#pragma once
// Day (or configurable) range partitions of telemetry, created ahead of time.

#include <cstdint>
#include <string>

namespace joule::db {

class session;

struct partition_report {
  int created = 0;
  std::int64_t rows_moved = 0;  // rows that had landed in telemetry_default
  int synced = 0;  // partitions found dropped/detached (logged) or attached by others (adopted)
};

/// Makes sure partitions exist for [now - behind*interval, now + (ahead+1)*interval), each
/// with the invalidation log's statement triggers. Rows already in telemetry_default for a
/// new partition's range are moved into it. First logs partitions that left telemetry since
/// the last check and adopts ones attached by others (joule_sync_partitions, migration 0004).
partition_report ensure_partitions(session& s, std::int64_t interval_us, int ahead, int behind);

/// Partition table name for the period starting at `start`.
std::string partition_name(std::int64_t start, std::int64_t interval_us);

} // namespace joule::db
