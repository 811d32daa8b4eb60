#include "rules/alert_metrics.hpp"

namespace joule::rules {
namespace {

std::optional<double> average_power(const bucket_value& b) {
  if (!b.power_sum || b.power_count <= 0)
    return std::nullopt;
  return *b.power_sum / static_cast<double>(b.power_count);
}

std::optional<double> max_power(const bucket_value& b) { return b.power_max; }

std::optional<double> energy(const bucket_value& b) { return b.energy_sum; }

std::optional<double> not_from_buckets(const bucket_value&) { return std::nullopt; }

} // namespace

const std::vector<metric_def>& metric_defs() {
  // A household's power is the sum of its devices; the largest single-device reading is not
  // its maximum power, and the household rollup keeps no maximum: power_w_max is device-only.
  static const std::vector<metric_def> defs = {
      {metric_kind::power_w_avg, "power_w_avg", true, true, false, average_power},
      {metric_kind::power_w_max, "power_w_max", true, false, true, max_power},
      {metric_kind::energy_wh_sum, "energy_wh_sum", true, true, true, energy},
      // Seconds since the scope's last reading (any device of a household), per feed cycle.
      {metric_kind::silence_sec, "silence_sec", true, true, false, not_from_buckets, false},
  };
  return defs;
}

const metric_def& def_of(metric_kind kind) {
  for (auto& d : metric_defs())
    if (d.kind == kind)
      return d;
  return metric_defs().front();
}

const metric_def* find_metric(const std::string& name) {
  for (auto& d : metric_defs())
    if (name == d.name)
      return &d;
  return nullptr;
}

std::string metric_names() {
  std::string out;
  for (auto& d : metric_defs())
    out += (out.empty() ? "" : ", ") + std::string(d.name);
  return out;
}

} // namespace joule::rules
