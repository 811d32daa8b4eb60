#pragma once

#include <cstdint>
#include <string>

#include "bench/fleet_ids.hpp"

namespace joule::bench {

/// One alert rule as `POST /alerts/rules` takes it (rules/README.md, rule model).
struct alert_rule_spec {
  std::string scope = "device"; // device | household
  std::string scope_id;
  std::string metric = "power_w_max";
  std::string window = "1m";
  std::string op = ">";
  double value = 0;
  int64_t cooldown_sec = 300;
  std::string webhook_url;
  std::string webhook_secret = "joule-bench";
};

/// The request body (enabled rule, all fields above).
std::string alert_rule_json(const alert_rule_spec& r);

/// Background rule `k` of a run: a device or household from `ids` chosen by hash of
/// (seed, k), scope and window mixed over device/household × 1m/5m, a threshold that never
/// trips (> 1e12; `power_w_avg` for households, where `power_w_max` is rejected).
alert_rule_spec background_rule(const fleet_ids& ids, uint64_t seed, uint64_t k,
                                const std::string& webhook_url);

/// A probe rule: fires on the first reading above 1 MW of `device_id`, no cooldown.
alert_rule_spec probe_rule(const std::string& device_id, const std::string& webhook_url);

/// The `id` of a stored rule (201 answer); false when absent.
bool read_rule_id(const std::string& body, std::string& id);

/// `alerts.manager` of a `GET /admin/status` answer; false when absent or not an object.
bool read_alert_manager_status(const std::string& body, bool& loaded, int64_t& evaluators);

/// The fields of a webhook body the benchmark matches on.
struct webhook_fields {
  std::string alert_id, rule_id, scope_id, status;
};
/// False when the body is not a JSON object with string `rule_id` and `status`.
bool parse_webhook_body(const std::string& body, webhook_fields& out);

/// utime + stime (clock ticks) from the text of /proc/PID/stat; false when malformed.
bool parse_proc_stat_cpu_ticks(const std::string& stat, uint64_t& ticks);
/// VmRSS in kB from the text of /proc/PID/status; false when absent.
bool parse_vm_rss_kb(const std::string& status, uint64_t& kb);

} // namespace joule::bench
