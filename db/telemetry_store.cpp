#include "db/telemetry_store.hpp"

#include <algorithm>
#include <cstdio>
#include <tuple>
#include <unordered_map>

#include <pqxx/pqxx>
#include <pqxx/stream_to>

#include "core/timefmt.hpp"
#include "db/session.hpp"

namespace joule::db {
namespace {

std::string pg_array(const std::vector<std::string>& ids) {
  std::string out = "{";
  for (size_t i = 0; i < ids.size(); ++i)
    out += (i ? "," : "") + ids[i];  // normalised UUIDs: no quoting needed
  return out + "}";
}

std::string number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

} // namespace

std::vector<batch_outcome>
write_batches(session& s, const std::vector<const std::vector<telemetry_row>*>& batches,
              const std::vector<const std::vector<std::string>*>& allowed) {
  std::vector<batch_outcome> out(batches.size());
  std::vector<std::string> ids;
  {
    std::unordered_map<std::string, bool> seen;
    for (auto* b : batches)
      for (auto& r : *b)
        if (seen.emplace(r.device_id, true).second)
          ids.push_back(r.device_id);
  }
  pqxx::work tx{s.conn()};
  std::unordered_map<std::string, std::string> household_of;
  for (auto row : tx.exec_params("SELECT id::text, household_id::text FROM devices "
                                 "WHERE id = ANY($1::uuid[])",
                                 pg_array(ids)))
    household_of.emplace(row[0].as<std::string>(), row[1].as<std::string>());

  std::vector<bool> accepted(batches.size(), true);
  for (size_t i = 0; i < batches.size(); ++i) {
    const std::vector<std::string>* only = i < allowed.size() ? allowed[i] : nullptr;
    if (only && !only->empty()) {
      std::vector<std::string> outside;
      for (auto& r : *batches[i]) {
        auto it = household_of.find(r.device_id);
        bool inside = it != household_of.end() &&
                      std::binary_search(only->begin(), only->end(), it->second) &&
                      (r.household_id.empty() ||
                       std::binary_search(only->begin(), only->end(), r.household_id));
        if (!inside && outside.size() < 20 &&
            std::find(outside.begin(), outside.end(), r.device_id) == outside.end())
          outside.push_back(r.device_id);
      }
      if (!outside.empty()) {
        accepted[i] = false;
        failure f;
        f.code = errc::forbidden;
        f.slug = "forbidden";
        f.message = "these devices are not registered in a household this token may write; "
                    "nothing was stored";
        f.list_name = "device_ids";
        f.list = std::move(outside);
        out[i].error = std::move(f);
        continue;
      }
    }
    std::vector<std::string> unknown, mismatch;
    for (auto& r : *batches[i]) {
      auto it = household_of.find(r.device_id);
      if (it == household_of.end()) {
        if (unknown.size() < 20 && std::find(unknown.begin(), unknown.end(), r.device_id) == unknown.end())
          unknown.push_back(r.device_id);
      } else if (!r.household_id.empty() && r.household_id != it->second) {
        if (mismatch.size() < 20)
          mismatch.push_back(r.device_id);
      }
    }
    if (unknown.empty() && mismatch.empty())
      continue;
    accepted[i] = false;
    failure f;
    f.code = errc::unprocessable;
    f.list_name = "device_ids";
    f.list = unknown.empty() ? mismatch : unknown;
    if (unknown.empty()) {
      f.slug = "household_mismatch";
      f.message = "household_id differs from the registered household of these devices";
    } else {
      f.slug = "unknown_devices";
      f.message = "these devices are not registered; nothing was stored";
    }
    out[i].error = std::move(f);
  }
  size_t written = 0;
  {
    pqxx::stream_to copy{tx, "telemetry",
                         std::vector<std::string>{"ts", "device_id", "household_id", "power_w",
                                                  "energy_wh"}};
    for (size_t i = 0; i < batches.size(); ++i) {
      if (!accepted[i])
        continue;
      for (auto& r : *batches[i]) {
        const auto& hh = r.household_id.empty() ? household_of.at(r.device_id) : r.household_id;
        copy << std::make_tuple(format_rfc3339(r.ts), r.device_id, hh, number(r.power_w),
                                number(r.energy_wh));
        ++written;
      }
      out[i].accepted = batches[i]->size();
    }
    copy.complete();
  }
  tx.commit();
  (void)written;
  return out;
}

} // namespace joule::db
