#pragma once
// The metrics an alert rule can watch, as one table: name, the scopes it applies to, how its
// value is read from a bucket, and whether it only grows within a bucket. Parsing, storage,
// rendering and evaluation all read this table, so a new metric is one enum value plus one row
// (and feed SQL if it needs a column the feed does not read yet).

#include <optional>
#include <string>
#include <vector>

#include "rules/evaluation.hpp"
#include "rules/rule.hpp"

namespace joule::rules {

struct metric_def {
  metric_kind kind = metric_kind::power_w_avg;
  const char* name = "";
  bool for_devices = true;
  bool for_households = true;
  /// Can only grow while its bucket is open (a `>`/`>=` breach of an open bucket is final).
  bool grows = false;
  /// The observed value of a bucket; nullopt when the bucket has no data for it.
  std::optional<double> (*value)(const bucket_value&) = nullptr;
  /// False for silence_sec: observed per feed cycle from the scope's last reading, not read
  /// from buckets (so no window).
  bool per_bucket = true;
};

const std::vector<metric_def>& metric_defs();
/// The row of `kind` (every enum value has one).
const metric_def& def_of(metric_kind kind);
/// The row named `name`, or nullptr.
const metric_def* find_metric(const std::string& name);
/// "power_w_avg, power_w_max, ..." for error messages.
std::string metric_names();

} // namespace joule::rules
