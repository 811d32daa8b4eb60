#include "bench/fleet_ids.hpp"

#include <pqxx/pqxx>

#include <algorithm>
#include <stdexcept>

#include "common/hash.hpp"
#include "sim/fleet.hpp"

namespace joule::bench {

namespace {

void fill_households(fleet_ids& ids) {
  ids.household_ids = ids.device_households;
  std::sort(ids.household_ids.begin(), ids.household_ids.end());
  ids.household_ids.erase(std::unique(ids.household_ids.begin(), ids.household_ids.end()),
                          ids.household_ids.end());
}

} // namespace

uuid probe_household_id() { return uuid::from_hashes(mix64(0x70726f6265ULL), mix64(1)); }
uuid probe_device_id() { return uuid::from_hashes(mix64(0x70726f6265ULL), mix64(2)); }

fleet_ids load_fleet_ids(const std::string& conninfo) {
  pqxx::connection conn(conninfo);
  pqxx::read_transaction tx(conn);
  auto rows = tx.exec_params(
      "SELECT id::text, household_id::text FROM devices WHERE household_id <> $1::uuid ORDER BY id",
      probe_household_id().to_string());
  fleet_ids ids;
  for (const auto& row : rows) {
    ids.device_ids.push_back(row[0].as<std::string>());
    ids.device_households.push_back(row[1].as<std::string>());
  }
  if (ids.device_ids.empty())
    throw std::runtime_error("no devices in the database (run joule-sim backfill first)");
  fill_households(ids);
  return ids;
}

fleet_ids fleet_ids_from_model(int64_t households, int64_t devices_min, int64_t devices_max,
                               uint64_t seed) {
  auto f = make_fleet({households, devices_min, devices_max, seed});
  fleet_ids ids;
  for (const auto& d : f.devices) {
    ids.device_ids.push_back(d.id.to_string());
    ids.device_households.push_back(d.household_id.to_string());
  }
  fill_households(ids);
  return ids;
}

} // namespace joule::bench
