#pragma once
// Rule evaluation as pure functions: one bucket in, the next state and at most one
// transition out. The evaluator actor, the tests and the README all lean on these.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "rules/rule.hpp"

namespace joule::rules {

/// One bucket of one scope id, as mergeable partial state (so 5m can be built from 1m).
struct bucket_value {
  std::int64_t start = 0;  // µs, UTC-aligned on the 2000-01-01 origin
  std::int64_t width = 0;  // µs
  std::optional<double> energy_sum;
  std::optional<double> power_sum;
  std::int64_t power_count = 0;
  std::optional<double> power_max;
  /// The bucket ended at least the grace period before the feed read it.
  bool closed = false;
};

/// The metric's value in a bucket, nullopt when the bucket holds no such reading.
std::optional<double> metric_value(metric_kind m, const bucket_value& b);

/// Merges finer buckets into `width` buckets (sums of sums, max of maxes), ascending. A
/// merged bucket is closed when it ends at or before `closed_before` (now - grace).
std::vector<bucket_value> merge_buckets(const std::vector<bucket_value>& fine, std::int64_t width,
                                        std::int64_t closed_before);

enum class phase : std::uint8_t { ok, pending, firing, resolved };
const char* to_string(phase p);
std::optional<phase> phase_from(const std::string& s);

/// Everything an evaluator remembers; persisted in alert_rule_state.
struct eval_state {
  phase current = phase::ok;
  int breaches = 0;                         // consecutive breaching buckets
  std::optional<std::int64_t> last_bucket;  // start of the newest bucket evaluated (final)
  std::int64_t cooldown_until = 0;          // µs; no new firing before this instant
  std::string incident_id;                  // alert id of the open firing, empty otherwise
  std::int64_t fired_at = 0;                // µs, when the open firing fired
  std::int64_t last_notified_at = 0;        // µs, the open firing's latest notification
  int repeats = 0;                          // repeat notifications of the open firing
  std::int64_t seq = 0;                     // optimistic-concurrency version of the row
};

/// What the definition says, in the shape evaluation needs.
struct rule_params {
  metric_kind metric = metric_kind::power_w_avg;
  compare_op op = compare_op::gt;
  double threshold = 0;
  std::optional<double> recover_value;
  int for_buckets = 1;
  std::int64_t cooldown_us = 300'000'000;
  std::int64_t window_us = minute_us;
  no_data_policy no_data = no_data_policy::keep;
};
rule_params params_of(const alert_rule& r);

bool compare(compare_op op, double observed, double threshold);
/// True when the condition holds (`observed op threshold`).
bool breaches(const rule_params& p, double observed);
/// True when a firing alert may resolve: past recover_value if set, else not breaching.
bool recovered(const rule_params& p, double observed);
/// A breach on a partial bucket can only get stronger as rows arrive (max and energy sums
/// grow, for > and >=), so such rules may fire before the bucket closes.
bool breach_is_final_early(const rule_params& p);

enum class transition : std::uint8_t { none, fired, resolved };

struct step_result {
  eval_state next;
  transition event = transition::none;
  bool evaluated = false;  // false: the bucket was skipped (old, open, or without data)
  double observed = 0;
};

/// Evaluates one observation that is final (a closed bucket, a final-early breach, or a
/// silence_sec reading of the clock): the transitions shared by every kind of rule.
/// `breach` and `recover` say what the observation means for this rule.
step_result observe(const rule_params& p, const eval_state& s, bool breach, bool recover,
                    std::int64_t now);

/// silence_sec: `observed` seconds since the scope's last reading, at database time `now`.
/// Every feed cycle is an observation (no buckets, no gaps).
step_result evaluate_silence(const rule_params& p, const eval_state& s, double observed,
                             std::int64_t now);

/// A closed bucket starting at `bucket_start` without data for the rule's metric, under the
/// rule's no_data policy: keep changes nothing (not even last_bucket), resolve resolves a
/// firing alert (pending → ok), alerting counts it as a breach.
step_result evaluate_no_data(const rule_params& p, const eval_state& s,
                             std::int64_t bucket_start, std::int64_t now);

/// Start of the newest closed bucket of `width` when buckets close at `closed_before`.
std::int64_t newest_closed_bucket(std::int64_t closed_before, std::int64_t width);

/// Evaluates one bucket at database time `now` (µs). Buckets at or before `last_bucket` are
/// skipped; open buckets are skipped unless a final-early breach; a gap since `last_bucket`
/// resets the consecutive count. The caller assigns alert ids for transitions.
step_result evaluate_bucket(const rule_params& p, const eval_state& s, const bucket_value& b,
                            std::int64_t now);

} // namespace joule::rules
