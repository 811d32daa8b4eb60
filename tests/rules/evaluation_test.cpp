// The state machine as pure functions: for_buckets, cooldown, hysteresis, resolve, partial
// buckets, gaps, and merging 1m state into 5m buckets.
#include <gtest/gtest.h>

#include "rules/alert_evaluator.hpp"
#include "rules/evaluation.hpp"

namespace joule::rules {
namespace {

constexpr std::int64_t min = minute_us;
constexpr std::int64_t t0 = 1'700'000'040LL * 1'000'000;  // a minute boundary

bucket_value avg_bucket(std::int64_t start, double avg, bool closed = true) {
  bucket_value b;
  b.start = start;
  b.width = min;
  b.power_sum = avg * 10;
  b.power_count = 10;
  b.power_max = avg * 2;
  b.energy_sum = avg / 60;
  b.closed = closed;
  return b;
}

rule_params over(double threshold, int for_buckets = 1, std::int64_t cooldown_s = 300) {
  rule_params p;
  p.metric = metric_kind::power_w_avg;
  p.op = compare_op::gt;
  p.threshold = threshold;
  p.for_buckets = for_buckets;
  p.cooldown_us = cooldown_s * 1'000'000;
  p.window_us = min;
  return p;
}

// Feeds bucket i (value v[i]) at time "bucket end + 5 s"; returns the transitions.
std::vector<transition> run(const rule_params& p, eval_state& s, const std::vector<double>& v,
                            std::int64_t first = t0) {
  std::vector<transition> out;
  for (std::size_t i = 0; i < v.size(); ++i) {
    auto start = first + static_cast<std::int64_t>(i) * min;
    auto r = evaluate_bucket(p, s, avg_bucket(start, v[i]), start + min + 5'000'000);
    EXPECT_TRUE(r.evaluated);
    s = r.next;
    out.push_back(r.event);
  }
  return out;
}

using T = transition;

TEST(Evaluation, FiresOnFirstBreachAndResolvesWhenBelow) {
  eval_state s;
  auto ev = run(over(100), s, {50, 150, 160, 90});
  EXPECT_EQ(ev, (std::vector<T>{T::none, T::fired, T::none, T::resolved}));
  EXPECT_EQ(s.current, phase::resolved);
}

TEST(Evaluation, ForBucketsNeedsConsecutiveBreaches) {
  eval_state s;
  auto ev = run(over(100, 3), s, {150, 150, 50, 150, 150, 150});
  EXPECT_EQ(ev, (std::vector<T>{T::none, T::none, T::none, T::none, T::none, T::fired}));
  eval_state s2;
  run(over(100, 3), s2, {150, 150});
  EXPECT_EQ(s2.current, phase::pending);
  EXPECT_EQ(s2.breaches, 2);
}

TEST(Evaluation, AGapWithoutDataRestartsTheCount) {
  auto p = over(100, 2);
  eval_state s;
  run(p, s, {150});
  // The next bucket with data comes two minutes later: not adjacent.
  auto r = evaluate_bucket(p, s, avg_bucket(t0 + 2 * min, 150), t0 + 3 * min + 5'000'000);
  EXPECT_EQ(r.event, T::none);
  EXPECT_EQ(r.next.breaches, 1);
}

TEST(Evaluation, CooldownSuppressesARefireAndFiresWhenItEnds) {
  auto p = over(100, 1, 300);  // 5 minutes
  eval_state s;
  // fire at minute 0, resolve at 1, breach at 2 and 3 (inside the cooldown: pending).
  auto ev = run(p, s, {150, 50, 150, 150});
  EXPECT_EQ(ev, (std::vector<T>{T::fired, T::resolved, T::none, T::none}));
  EXPECT_EQ(s.current, phase::pending);
  // Minute 5's bucket is evaluated at t0 + 6 min + 5 s, after the cooldown ended.
  auto ev2 = run(p, s, {150, 150}, t0 + 4 * min);
  EXPECT_EQ(ev2, (std::vector<T>{T::none, T::fired}));
}

TEST(Evaluation, BreachThatEndsInsideTheCooldownIsDropped) {
  auto p = over(100, 1, 3600);
  eval_state s;
  auto ev = run(p, s, {150, 50, 150, 50, 50});
  EXPECT_EQ(ev, (std::vector<T>{T::fired, T::resolved, T::none, T::none, T::none}));
  EXPECT_EQ(s.current, phase::ok);  // resolved → pending (suppressed) → ok
  EXPECT_EQ(s.breaches, 0);
}

TEST(Evaluation, HysteresisKeepsFiringInsideTheBand) {
  auto p = over(100);
  p.recover_value = 80;
  eval_state s;
  auto ev = run(p, s, {150, 95, 85, 80, 79});
  EXPECT_EQ(ev, (std::vector<T>{T::fired, T::none, T::none, T::none, T::resolved}));
}

TEST(Evaluation, HysteresisForBelowRules) {
  rule_params p = over(10);
  p.op = compare_op::lt;
  p.recover_value = 20;
  eval_state s;
  auto ev = run(p, s, {5, 15, 21});
  EXPECT_EQ(ev, (std::vector<T>{T::fired, T::none, T::resolved}));
}

TEST(Evaluation, OpenBucketsWaitUnlessTheBreachIsFinal) {
  auto avg = over(100);
  eval_state s;
  auto open = avg_bucket(t0, 150, /*closed=*/false);
  auto r = evaluate_bucket(avg, s, open, t0 + 30'000'000);
  EXPECT_FALSE(r.evaluated);  // an average can still fall
  auto mx = over(100);
  mx.metric = metric_kind::power_w_max;
  r = evaluate_bucket(mx, s, open, t0 + 30'000'000);
  EXPECT_TRUE(r.evaluated);  // a maximum can only grow
  EXPECT_EQ(r.event, T::fired);
  // ... and that bucket is final: its close does not count it twice.
  auto closed = avg_bucket(t0, 150, true);
  auto again = evaluate_bucket(mx, r.next, closed, t0 + min + 5'000'000);
  EXPECT_FALSE(again.evaluated);
  // A non-breaching open bucket of a max rule waits for the close.
  auto calm = avg_bucket(t0 + min, 10, false);
  EXPECT_FALSE(evaluate_bucket(mx, r.next, calm, t0 + min + 10'000'000).evaluated);
  // Falling below is never final early: resolution waits for the close.
  mx.op = compare_op::lt;
  EXPECT_FALSE(breach_is_final_early(mx));
}

TEST(Evaluation, OldBucketsAndBucketsWithoutTheMetricAreSkipped) {
  auto p = over(100);
  eval_state s;
  s.last_bucket = t0;
  EXPECT_FALSE(evaluate_bucket(p, s, avg_bucket(t0, 500), t0 + 2 * min).evaluated);
  bucket_value empty;
  empty.start = t0 + min;
  empty.width = min;
  empty.closed = true;
  EXPECT_FALSE(evaluate_bucket(p, s, empty, t0 + 3 * min).evaluated);
}

TEST(Evaluation, MergeCombinesOneMinuteStateExactly) {
  std::vector<bucket_value> fine;
  const std::int64_t base = 1'700'000'100LL * 1'000'000;  // 5-minute aligned
  for (int i = 0; i < 7; ++i) {
    bucket_value b;
    b.start = base + i * min;
    b.width = min;
    b.power_sum = 100.0 * (i + 1);
    b.power_count = i + 1;  // averages of 100 W each, different weights
    b.power_max = 10.0 * i;
    b.energy_sum = 1;
    fine.push_back(b);
  }
  auto merged = merge_buckets(fine, 5 * min, base + 5 * min);
  ASSERT_EQ(merged.size(), 2u);
  EXPECT_EQ(merged[0].start, base);
  EXPECT_TRUE(merged[0].closed);
  EXPECT_FALSE(merged[1].closed);
  EXPECT_DOUBLE_EQ(*metric_value(metric_kind::power_w_avg, merged[0]), 100.0);
  EXPECT_DOUBLE_EQ(*merged[0].energy_sum, 5.0);
  EXPECT_DOUBLE_EQ(*merged[0].power_max, 40.0);
  EXPECT_EQ(merged[1].power_count, 6 + 7);
}

TEST(Silence, FiresPastTheThresholdAndResolvesOnAReading) {
  alert_rule rule;
  rule.id = "r1";
  rule.metric = metric_kind::silence_sec;
  rule.threshold = 300;
  rule.cooldown_sec = 0;
  rule.webhook_url = "http://h/x";
  int n = 0;
  auto ids = [&n] { return "id" + std::to_string(++n); };
  const std::int64_t seen = t0;
  auto at = [&](std::int64_t now, std::optional<std::int64_t> last) {
    feed_batch b;
    b.db_now = now;
    b.last_seen = last;
    return b;
  };
  eval_state s;
  auto r = evaluate_batch(rule, s, at(seen + 299'000'000, seen), ids);
  EXPECT_TRUE(r.notes.empty());
  r = evaluate_batch(rule, r.next, at(seen + 301'000'000, seen), ids);
  ASSERT_EQ(r.notes.size(), 1u);
  EXPECT_EQ(r.notes[0].status, "firing");
  EXPECT_NE(r.notes[0].payload.find("\"observed\":301.0"), std::string::npos)
      << r.notes[0].payload;
  EXPECT_NE(r.notes[0].payload.find("\"window\":null"), std::string::npos);
  // Still silent: no second firing.
  r = evaluate_batch(rule, r.next, at(seen + 400'000'000, seen), ids);
  EXPECT_TRUE(r.notes.empty());
  // A reading arrives: resolved.
  r = evaluate_batch(rule, r.next, at(seen + 401'000'000, seen + 400'500'000), ids);
  ASSERT_EQ(r.notes.size(), 1u);
  EXPECT_EQ(r.notes[0].status, "resolved");
  EXPECT_EQ(r.notes[0].incident_id, "id1");
  // A scope that never reported is silent since the rule was created.
  rule.created_at = t0;
  r = evaluate_batch(rule, eval_state{}, at(t0 + 10'000'000, std::nullopt), ids);
  EXPECT_TRUE(r.notes.empty());
  r = evaluate_batch(rule, eval_state{}, at(t0 + 302'000'000, std::nullopt), ids);
  EXPECT_EQ(r.notes.size(), 1u);
}

TEST(NoData, ResolveAlertingAndKeep) {
  alert_rule rule;
  rule.id = "r1";
  rule.threshold = 100;
  rule.cooldown_sec = 0;
  rule.webhook_url = "http://h/x";
  int n = 0;
  auto ids = [&n] { return "id" + std::to_string(++n); };
  // Bucket t0 breaches and closes; the next minute closes without any reading.
  feed_batch hot{{avg_bucket(t0, 500)}, t0 + min + 3'000'000, t0 + min + 1'000'000,
                 std::nullopt};
  feed_batch quiet{{}, t0 + 2 * min + 3'000'000, t0 + 2 * min + 1'000'000, std::nullopt};
  for (auto policy : {no_data_policy::keep, no_data_policy::resolve}) {
    rule.no_data = policy;
    auto r = evaluate_batch(rule, eval_state{}, hot, ids);
    ASSERT_EQ(r.next.current, phase::firing);
    auto q = evaluate_batch(rule, r.next, quiet, ids);
    if (policy == no_data_policy::keep) {
      EXPECT_TRUE(q.notes.empty());
      EXPECT_EQ(q.next.current, phase::firing);
    } else {
      ASSERT_EQ(q.notes.size(), 1u);
      EXPECT_EQ(q.notes[0].status, "resolved");
      EXPECT_NE(q.notes[0].payload.find("\"observed\":null"), std::string::npos);
      EXPECT_EQ(*q.next.last_bucket, t0 + min);
      // The same quiet bucket again (the feed re-sends every cycle): nothing more.
      EXPECT_TRUE(evaluate_batch(rule, q.next, quiet, ids).notes.empty());
    }
  }
  rule.no_data = no_data_policy::alerting;
  rule.for_buckets = 2;
  feed_batch quiet2{{}, t0 + 3 * min + 3'000'000, t0 + 3 * min + 1'000'000, std::nullopt};
  auto r = evaluate_batch(rule, eval_state{}, quiet, ids);
  EXPECT_EQ(r.next.current, phase::pending);
  r = evaluate_batch(rule, r.next, quiet2, ids);
  ASSERT_EQ(r.notes.size(), 1u);
  EXPECT_EQ(r.notes[0].status, "firing");
}

TEST(EvaluateBatch, AssignsIdsAndPersistsOnlyMeaningfulChanges) {
  alert_rule rule;
  rule.id = "r1";
  rule.threshold = 100;
  rule.webhook_url = "http://h/x";
  int n = 0;
  auto ids = [&n] { return "id" + std::to_string(++n); };
  eval_state s;
  feed_batch calm{{avg_bucket(t0, 10)}, t0 + min + 5'000'000, 0, std::nullopt};
  auto r = evaluate_batch(rule, s, calm, ids);
  EXPECT_EQ(r.evaluated, 1);
  EXPECT_FALSE(r.must_persist);  // ok stays ok: only last_bucket moved
  feed_batch hot{{avg_bucket(t0 + min, 500), avg_bucket(t0 + 2 * min, 10)},
                 t0 + 3 * min + 5'000'000, 0, std::nullopt};
  r = evaluate_batch(rule, r.next, hot, ids);
  ASSERT_EQ(r.notes.size(), 2u);
  EXPECT_TRUE(r.must_persist);
  EXPECT_EQ(r.notes[0].status, "firing");
  EXPECT_EQ(r.notes[0].alert_id, "id1");
  EXPECT_EQ(r.notes[0].incident_id, "id1");
  EXPECT_EQ(r.notes[1].status, "resolved");
  EXPECT_EQ(r.notes[1].alert_id, "id2");
  EXPECT_EQ(r.notes[1].incident_id, "id1");
  EXPECT_TRUE(r.next.incident_id.empty());
  EXPECT_NE(r.notes[0].payload.find("\"status\":\"firing\""), std::string::npos);
  EXPECT_NE(r.notes[0].payload.find("\"observed\":500.0"), std::string::npos);
  EXPECT_EQ(r.notes[0].destination, "http://h:80");
}

} // namespace
} // namespace joule::rules
