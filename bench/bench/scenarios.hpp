#pragma once

#include <string>

#include "bench/fleet_ids.hpp"
#include "common/cli_args.hpp"

namespace joule::bench {

/// What a scenario hands back besides what it prints while running.
struct scenario_report {
  std::string json;     // one JSON object
  std::string markdown; // a section for bench/REPORT.md
};

/// The ids to request: from `--db` (devices table) or, without it, from the simulator model
/// (`--households N --seed S [--devices-min --devices-max]`). Throws std::invalid_argument
/// when neither is given.
fleet_ids fleet_ids_from_args(const cli_args& args);

/// Each scenario reads its options from `args` (see joule-bench --help), throws
/// std::invalid_argument on a bad option, and reports server errors in its numbers rather
/// than failing.
scenario_report run_read_scenario(const cli_args& args);
scenario_report run_poll_scenario(const cli_args& args);
scenario_report run_raw_vs_rollup_scenario(const cli_args& args);
scenario_report run_freshness_scenario(const cli_args& args);
scenario_report run_ingest_scenario(const cli_args& args);
scenario_report run_alerts_scenario(const cli_args& args);
scenario_report run_auth_overhead_scenario(const cli_args& args);

} // namespace joule::bench
