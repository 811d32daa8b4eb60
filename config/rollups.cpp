#include "config/rollups.hpp"

#include <set>

namespace joule::config {

using std::chrono::hours;
using std::chrono::minutes;
using std::chrono::seconds;

const std::vector<rollup_def>& rollup_defs() {
  // The design document's three rollups and policies (1 m every 30 s, 5 m every 2 min,
  // 1 h every 10 min). All read raw telemetry: a 1 h rollup built from the 1 m one would
  // only be repaired within the 1 m policy's 2 h start_offset, not its own 7 days.
  static const std::vector<rollup_def> all = {
      // name, width, source, key column, has_max,
      //   {start_offset, end_offset, schedule_interval}, read view
      {"device_1m", minutes(1), "", "device_id", true,
       {hours(2), minutes(1), seconds(30)}, "ca_device_1m"},
      {"household_5m", minutes(5), "", "household_id", false,
       {hours(24), minutes(5), minutes(2)}, "ca_household_5m"},
      {"device_1h", hours(1), "", "device_id", true,
       {hours(24 * 7), hours(1), minutes(10)}, "ca_device_1h"},
  };
  return all;
}

std::string rollup_def::width_sql() const {
  auto n = width.count();
  auto unit = [](long long v, const char* one) {
    return std::to_string(v) + " " + one + (v == 1 ? "" : "s");
  };
  if (n % 3600 == 0)
    return unit(n / 3600, "hour");
  if (n % 60 == 0)
    return unit(n / 60, "minute");
  return unit(n, "second");
}

std::size_t rollup_index(const std::string& name) {
  const auto& all = rollup_defs();
  for (std::size_t i = 0; i < all.size(); ++i)
    if (all[i].name == name)
      return i;
  return all.size();
}

std::string rollup_names() {
  std::string out;
  for (auto& d : rollup_defs())
    out += (out.empty() ? "" : ", ") + d.name;
  return out;
}

std::map<std::string, refresh_policy> default_refresh_policies() {
  std::map<std::string, refresh_policy> out;
  for (auto& d : rollup_defs())
    out.emplace(d.name, d.policy);
  return out;
}

std::vector<std::string> validate(const std::vector<rollup_def>& defs) {
  std::vector<std::string> errors;
  std::set<std::string> seen;
  for (std::size_t i = 0; i < defs.size(); ++i) {
    const auto& d = defs[i];
    auto fail = [&](const std::string& what) { errors.push_back("rollup '" + d.name + "': " + what); };
    // The name becomes part of SQL identifiers and settings keys.
    bool ident = !d.name.empty() && d.name.size() <= 40 && !(d.name[0] >= '0' && d.name[0] <= '9');
    for (char c : d.name)
      ident = ident && ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_');
    if (!ident)
      fail("name must be lower-case letters, digits and _ (at most 40)");
    if (!seen.insert(d.name).second)
      fail("defined twice");
    if (d.width.count() <= 0 || 86400 % d.width.count() != 0)
      fail("width must divide a day (buckets stay aligned to UTC midnight)");
    if (d.key_column != "device_id" && d.key_column != "household_id")
      fail("key column must be device_id or household_id");
    if (d.policy.start_offset <= d.policy.end_offset)
      fail("start_offset must be larger than end_offset");
    // TimescaleDB's rule: the policy window must hold at least two whole buckets.
    if (d.policy.start_offset - d.policy.end_offset < 2 * d.width)
      fail("the policy window (start_offset - end_offset) must span at least two buckets");
    if (d.policy.schedule_interval <= millis(0))
      fail("schedule_interval must be positive");
    if (d.read_view.empty())
      fail("needs a read view");
    if (!d.source.empty()) {
      const rollup_def* src = nullptr;
      for (std::size_t j = 0; j < i; ++j)
        if (defs[j].name == d.source)
          src = &defs[j];
      if (!src) {
        fail("source '" + d.source + "' must be a rollup listed before it");
        continue;
      }
      if (d.width.count() % src->width.count() != 0 || d.width <= src->width)
        fail("width must be a multiple of its source's width");
      if (d.key_column != src->key_column)
        fail("key column must be its source's key column");
      if (d.has_max && !src->has_max)
        fail("has_max needs a source that keeps power_w_max");
    }
  }
  return errors;
}

} // namespace joule::config
