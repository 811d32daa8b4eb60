#pragma once
// The rollup definitions: one table that everything about a rollup is derived from — the
// rollup_state rows and schema the migrations must provide (db/rollups.cpp checks them), the
// refresh actors (actors/app.cpp), the watermark board (db/watermarks.hpp), the settings keys
// `refresh.<name>.*` (config/settings.cpp) and the CLI's `joule refresh ROLLUP` usage text.
// It lives in config/ because the settings are generated from it and config/ depends on
// nothing; db/ and actors/ read it from here.
//
// Adding a rollup: one entry below, plus a migration creating its table `rollup_<name>` and
// its read view, plus its three `refresh.<name>.*` lines in config/joule.conf (see README).

#include <chrono>
#include <cstddef>
#include <map>
#include <string>
#include <vector>

namespace joule::config {

using millis = std::chrono::milliseconds;

/// Refresh policy of one rollup (TimescaleDB's add_continuous_aggregate_policy).
struct refresh_policy {
  millis start_offset{0};
  millis end_offset{0};
  millis schedule_interval{0};
};

struct rollup_def {
  std::string name;        // rollup_state.name, settings `refresh.<name>.*`, `joule refresh NAME`
  std::chrono::seconds width{0};  // bucket width (UTC buckets, origin 2000-01-01)
  std::string source;      // empty: raw telemetry; else the name of a finer rollup (listed
                           // earlier) whose mergeable state is combined
  std::string key_column;  // device_id or household_id
  bool has_max = false;    // keeps power_w_max
  refresh_policy policy;   // default policy (settings may override each field)
  std::string read_view;   // real-time read view of the design document (ca_...)

  /// Materialised table: rollup_<name>.
  std::string table() const { return "rollup_" + name; }
  /// The width as an SQL interval literal ("1 minute", "5 minutes", "1 hour").
  std::string width_sql() const;
};

/// Every rollup, finer sources before the rollups built from them.
const std::vector<rollup_def>& rollup_defs();

/// Position of `name` in rollup_defs(), or rollup_defs().size() if unknown.
std::size_t rollup_index(const std::string& name);

/// "device_1m, household_5m, device_1h": for usage and error texts.
std::string rollup_names();

/// The default policies, keyed by rollup name (the initial value of settings' map).
std::map<std::string, refresh_policy> default_refresh_policies();

/// Problems with a definition table (empty: fine). Checked by a unit test, so a bad new entry
/// fails the build's tests rather than a server's start-up.
std::vector<std::string> validate(const std::vector<rollup_def>& defs);

} // namespace joule::config
