#include "sim/device_registry.hpp"

#include <pqxx/pqxx>

#include <algorithm>

namespace joule::bench {

namespace {

// PostgreSQL array literal: every element double-quoted, '"' and '\' escaped.
void append_array_element(std::string& array, const std::string& value) {
  array += array.size() > 1 ? ",\"" : "\"";
  for (char c : value) {
    if (c == '"' || c == '\\')
      array += '\\';
    array += c;
  }
  array += '"';
}

} // namespace

uint64_t register_devices(const std::string& conninfo, const fleet& f) {
  pqxx::connection conn(conninfo);
  pqxx::work tx(conn);
  uint64_t inserted = 0;
  constexpr size_t batch = 5000;
  for (size_t first = 0; first < f.devices.size(); first += batch) {
    std::string ids = "{", homes = "{", names = "{";
    for (size_t i = first; i < std::min(f.devices.size(), first + batch); ++i) {
      const auto& d = f.devices[i];
      append_array_element(ids, d.id.to_string());
      append_array_element(homes, d.household_id.to_string());
      append_array_element(names, d.name);
    }
    ids += '}';
    homes += '}';
    names += '}';
    auto r = tx.exec_params(
        "INSERT INTO devices (id, household_id, name) "
        "SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[]) "
        "ON CONFLICT (id) DO NOTHING",
        ids, homes, names);
    inserted += r.affected_rows();
  }
  tx.commit();
  return inserted;
}

} // namespace joule::bench
