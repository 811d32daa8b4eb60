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

step_result evaluate_bucket(const rule_params& p, const eval_state& s, const bucket_value& b,
                            std::int64_t now) {
  step_result r;
  r.next = s;
  if (s.last_bucket && b.start <= *s.last_bucket)
    return r;  // already final for this rule
  auto v = metric_value(p.metric, b);
  if (!v)
    return r;  // no data is neither a breach nor a recovery
  const bool breach = breaches(p, *v);
  if (!b.closed && !(breach && breach_is_final_early(p)))
    return r;  // wait until the bucket closes
  r.evaluated = true;
  r.observed = *v;
  auto& n = r.next;
  // `for_buckets` counts adjacent buckets: a bucket without data in between starts over.
  if (s.last_bucket && b.start > *s.last_bucket + p.window_us)
    n.breaches = 0;
  n.last_bucket = b.start;
  if (s.current == phase::firing) {
    if (recovered(p, *v)) {
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
    r.event = transition::fired;
  } else {
    // Not enough consecutive buckets yet, or inside the cooldown of the previous firing:
    // pending until both allow a firing (a breach that ends inside the cooldown is dropped).
    n.current = phase::pending;
  }
  return r;
}

} // namespace joule::rules
