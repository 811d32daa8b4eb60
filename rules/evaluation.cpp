#include "rules/evaluation.hpp"

#include <algorithm>
#include <map>

#include "core/timefmt.hpp"
#include "rules/alert_metrics.hpp"

namespace joule::rules {

std::optional<double> metric_value(metric_kind m, const bucket_value& b) {
  return def_of(m).value(b);
}

namespace {

void add_opt(std::optional<double>& into, const std::optional<double>& v) {
  if (v)
    into = into ? *into + *v : *v;
}

} // namespace

std::vector<bucket_value> merge_buckets(const std::vector<bucket_value>& fine, std::int64_t width,
                                        std::int64_t closed_before) {
  std::map<std::int64_t, bucket_value> out;
  for (auto& b : fine) {
    auto start = floor_to(b.start, width);
    auto& m = out[start];
    m.start = start;
    m.width = width;
    add_opt(m.energy_sum, b.energy_sum);
    add_opt(m.power_sum, b.power_sum);
    m.power_count += b.power_count;
    if (b.power_max)
      m.power_max = m.power_max ? std::max(*m.power_max, *b.power_max) : *b.power_max;
  }
  std::vector<bucket_value> v;
  v.reserve(out.size());
  for (auto& [start, b] : out) {
    b.closed = start + width <= closed_before;
    v.push_back(b);
  }
  return v;
}

const char* to_string(phase p) {
  switch (p) {
    case phase::ok: return "ok";
    case phase::pending: return "pending";
    case phase::firing: return "firing";
    case phase::resolved: return "resolved";
  }
  return "ok";
}

std::optional<phase> phase_from(const std::string& s) {
  for (auto p : {phase::ok, phase::pending, phase::firing, phase::resolved})
    if (s == to_string(p))
      return p;
  return std::nullopt;
}

rule_params params_of(const alert_rule& r) {
  rule_params p;
  p.metric = r.metric;
  p.op = r.op;
  p.threshold = r.threshold;
  p.recover_value = r.recover_value;
  p.for_buckets = r.for_buckets;
  p.cooldown_us = r.cooldown_sec * micros_per_second;
  p.window_us = r.window_us;
  p.no_data = r.no_data;
  return p;
}

bool compare(compare_op op, double observed, double threshold) {
  switch (op) {
    case compare_op::gt: return observed > threshold;
    case compare_op::ge: return observed >= threshold;
    case compare_op::lt: return observed < threshold;
    case compare_op::le: return observed <= threshold;
  }
  return false;
}

bool breaches(const rule_params& p, double observed) {
  return compare(p.op, observed, p.threshold);
}

bool recovered(const rule_params& p, double observed) {
  if (!p.recover_value)
    return !breaches(p, observed);
  // With hysteresis, "recovered" is strictly past recover_value on the healthy side: for
  // `> 100` with recover_value 80 the alert resolves at 79.9, not at 80 or 95.
  return !compare(p.op, observed, *p.recover_value) && observed != *p.recover_value;
}

bool breach_is_final_early(const rule_params& p) {
  return def_of(p.metric).grows && (p.op == compare_op::gt || p.op == compare_op::ge);
}

step_result observe(const rule_params& p, const eval_state& s, bool breach, bool recover,
                    std::int64_t now) {
  step_result r;
  r.next = s;
  r.evaluated = true;
  auto& n = r.next;
  if (s.current == phase::firing) {
    if (recover) {
      n.current = phase::resolved;
      n.breaches = 0;
      r.event = transition::resolved;
    }
    // Between threshold and recover_value (hysteresis band) the alert keeps firing.
    return r;
  }
  if (!breach) {
    n.breaches = 0;
    if (n.current == phase::pending)
      n.current = phase::ok;
    return r;
  }
  n.breaches = std::min(n.breaches + 1, 1'000'000);
  if (n.breaches >= p.for_buckets && now >= s.cooldown_until) {
    n.current = phase::firing;
    n.fired_at = now;
    n.cooldown_until = now + p.cooldown_us;
    n.last_notified_at = now;
    n.repeats = 0;
    r.event = transition::fired;
  } else {
    // Not enough consecutive buckets yet, or inside the cooldown of the previous firing:
    // pending until both allow a firing (a breach that ends inside the cooldown is dropped).
    n.current = phase::pending;
  }
  return r;
}

step_result evaluate_silence(const rule_params& p, const eval_state& s, double observed,
                             std::int64_t now) {
  // One observation per feed cycle: for_buckets counts cycles, which says nothing useful, so
  // a silence fires on the first observation past the threshold.
  auto q = p;
  q.for_buckets = 1;
  auto r = observe(q, s, breaches(q, observed), recovered(q, observed), now);
  r.observed = observed;
  return r;
}

std::int64_t newest_closed_bucket(std::int64_t closed_before, std::int64_t width) {
  return floor_to(closed_before, width) - width;
}

step_result evaluate_no_data(const rule_params& p, const eval_state& s,
                             std::int64_t bucket_start, std::int64_t now) {
  step_result r;
  r.next = s;
  if (p.no_data == no_data_policy::keep || (s.last_bucket && bucket_start <= *s.last_bucket))
    return r;
  const bool alerting = p.no_data == no_data_policy::alerting;
  // Under `alerting` the buckets of a gap were no-data breaches too: the count goes on.
  r = observe(p, s, alerting, !alerting, now);
  r.next.last_bucket = bucket_start;
  return r;
}

step_result evaluate_bucket(const rule_params& p, const eval_state& s, const bucket_value& b,
                            std::int64_t now) {
  step_result r;
  r.next = s;
  if (s.last_bucket && b.start <= *s.last_bucket)
    return r;  // already final for this rule
  auto v = metric_value(p.metric, b);
  if (!v)
    return r;  // no data: the caller applies the no_data policy to closed buckets
  const bool breach = breaches(p, *v);
  if (!b.closed && !(breach && breach_is_final_early(p)))
    return r;  // wait until the bucket closes
  auto base = s;
  // `for_buckets` counts adjacent buckets: a bucket without data in between starts over.
  if (s.last_bucket && b.start > *s.last_bucket + p.window_us)
    base.breaches = 0;
  r = observe(p, base, breach, recovered(p, *v), now);
  r.observed = *v;
  r.next.last_bucket = b.start;
  return r;
}

} // namespace joule::rules
