// The evaluator actor under CAF's deterministic test scheduler, with a mock store: exact
// message flow for firing, re-sent buckets, conflicts, and a save that never answers (the
// request timer is fired instantly with advance_time).
#include <gtest/gtest.h>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <caf/send.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "rules/alert_evaluator.hpp"

namespace joule::rules {
namespace {

constexpr std::int64_t t0 = 1'700'000'040LL * 1'000'000;

// What the mock store saw and how it answers.
struct store_script {
  enum mode_t { apply, conflict, never_answer } mode = apply;
  std::vector<state_change> seen;
  eval_state stored;  // for conflict answers
  std::vector<caf::typed_response_promise<save_outcome>> held;
};

alert_store_actor::behavior_type mock_store(alert_store_actor::pointer self,
                                            std::shared_ptr<store_script> script) {
  return {
      [self, script](state_change& c) -> caf::typed_response_promise<save_outcome> {
        auto rp = self->make_response_promise<save_outcome>();
        script->seen.push_back(c);
        switch (script->mode) {
          case store_script::apply: {
            auto cur = c.next;
            cur.seq = c.expected_seq + 1;
            rp.deliver(save_outcome{save_outcome::applied, cur, {}});
            break;
          }
          case store_script::conflict:
            rp.deliver(save_outcome{save_outcome::conflict, script->stored, {}});
            break;
          case store_script::never_answer:
            script->held.push_back(rp);
            break;
        }
        return rp;
      },
  };
}

class EvaluatorActor : public ::testing::Test {
protected:
  EvaluatorActor() {
    cfg.set("scheduler.policy", caf::atom("testing"));
    cfg.set("logger.verbosity", caf::atom("quiet"));
    sys = std::make_unique<caf::actor_system>(cfg);
    sched = &dynamic_cast<caf::scheduler::test_coordinator&>(sys->scheduler());
    script = std::make_shared<store_script>();
    store = sys->spawn(mock_store, script);
    rule.id = "11111111-0000-4000-8000-000000000001";
    rule.metric = metric_kind::power_w_avg;
    rule.op = compare_op::gt;
    rule.threshold = 100;
    rule.cooldown_sec = 600;
    rule.webhook_url = "http://hooks.test/x";
    rule.webhook_secret = "k";
    evaluator = sys->spawn(alert_evaluator, rule, eval_state{}, store,
                           std::chrono::milliseconds(5000));
    sched->run();
  }

  ~EvaluatorActor() override {
    script->held.clear();
    caf::anon_send_exit(evaluator, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(store, caf::exit_reason::user_shutdown);
    sched->run();
  }

  alert_evaluator_state& st() {
    auto* ptr = caf::actor_cast<caf::abstract_actor*>(evaluator);
    return dynamic_cast<alert_evaluator_actor::stateful_pointer<alert_evaluator_state>>(ptr)
        ->state;
  }

  static feed_batch batch(std::int64_t start, double avg) {
    bucket_value b;
    b.start = start;
    b.width = minute_us;
    b.power_sum = avg;
    b.power_count = 1;
    b.closed = true;
    return feed_batch{{b}, start + minute_us + 3'000'000, 0, std::nullopt};
  }

  void feed(feed_batch b) {
    caf::anon_send(evaluator, std::move(b));
    sched->run();
  }

  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  caf::scheduler::test_coordinator* sched = nullptr;
  std::shared_ptr<store_script> script;
  alert_store_actor store;
  alert_rule rule;
  alert_evaluator_actor evaluator;
};

TEST_F(EvaluatorActor, BreachIsStoredWithOneFiringNotification) {
  feed(batch(t0, 50));
  EXPECT_TRUE(script->seen.empty());  // ok → ok needs no write
  feed(batch(t0 + minute_us, 150));
  ASSERT_EQ(script->seen.size(), 1u);
  auto& c = script->seen[0];
  EXPECT_EQ(c.rule_id, rule.id);
  EXPECT_EQ(c.expected_seq, 0);
  EXPECT_EQ(c.next.current, phase::firing);
  ASSERT_EQ(c.notes.size(), 1u);
  EXPECT_EQ(c.notes[0].status, "firing");
  EXPECT_EQ(c.notes[0].incident_id, c.notes[0].alert_id);
  EXPECT_EQ(st().state.current, phase::firing);
  EXPECT_EQ(st().state.seq, 1);
  EXPECT_EQ(st().fired, 1u);
}

TEST_F(EvaluatorActor, ResentAndStillBreachingBucketsDoNotFireAgain) {
  feed(batch(t0, 150));
  feed(batch(t0, 150));                  // the feed re-sends the same bucket
  feed(batch(t0 + minute_us, 170));      // still breaching: stays firing, no write
  EXPECT_EQ(script->seen.size(), 1u);
  feed(batch(t0 + 2 * minute_us, 20));   // resolves
  ASSERT_EQ(script->seen.size(), 2u);
  ASSERT_EQ(script->seen[1].notes.size(), 1u);
  EXPECT_EQ(script->seen[1].notes[0].status, "resolved");
  EXPECT_EQ(script->seen[1].notes[0].incident_id, script->seen[0].notes[0].alert_id);
  EXPECT_EQ(script->seen[1].expected_seq, 1);
  feed(batch(t0 + 3 * minute_us, 200));  // inside the 600 s cooldown: pending, no firing
  ASSERT_EQ(script->seen.size(), 3u);
  EXPECT_TRUE(script->seen[2].notes.empty());
  EXPECT_EQ(st().state.current, phase::pending);
}

TEST_F(EvaluatorActor, SaveThatNeverAnswersTimesOutAndIsRetriedWithTheSameBuckets) {
  script->mode = store_script::never_answer;
  feed(batch(t0, 150));
  ASSERT_EQ(script->seen.size(), 1u);
  EXPECT_TRUE(st().saving);
  feed(batch(t0, 150));  // dropped while the save is in flight
  EXPECT_EQ(script->seen.size(), 1u);
  EXPECT_EQ(st().dropped_batches, 1u);
  // Fire the request timer: no real waiting.
  sched->advance_time(std::chrono::milliseconds(5001));
  sched->run();
  EXPECT_FALSE(st().saving);
  EXPECT_EQ(st().save_failures, 1u);
  EXPECT_EQ(st().state.current, phase::ok);  // nothing counted that was not stored
  script->mode = store_script::apply;
  feed(batch(t0, 150));
  ASSERT_EQ(script->seen.size(), 2u);
  EXPECT_EQ(script->seen[1].next.current, phase::firing);
  EXPECT_EQ(st().state.current, phase::firing);
}

// The feed sends a scope's buckets only when they change: a batch that arrives during a save
// is kept, not lost; after a failed save it is evaluated a second later (no hot retry loop).
TEST_F(EvaluatorActor, ABatchArrivingDuringAFailedSaveIsEvaluatedASecondLater) {
  script->mode = store_script::never_answer;
  feed(batch(t0, 150));  // fires; the save never answers
  ASSERT_EQ(script->seen.size(), 1u);
  feed(batch(t0 + minute_us, 170));  // arrives during the save: kept
  EXPECT_EQ(script->seen.size(), 1u);
  EXPECT_EQ(st().dropped_batches, 1u);
  script->mode = store_script::apply;
  sched->advance_time(std::chrono::milliseconds(5001));  // the save times out
  sched->run();
  EXPECT_FALSE(st().saving);
  EXPECT_EQ(script->seen.size(), 1u);  // not at once
  sched->advance_time(std::chrono::seconds(1));
  sched->run();
  ASSERT_EQ(script->seen.size(), 2u);  // the kept batch, from the stored (ok) state
  EXPECT_EQ(script->seen[1].next.current, phase::firing);
  EXPECT_EQ(script->seen[1].next.last_bucket, t0 + minute_us);
  ASSERT_EQ(script->seen[1].notes.size(), 1u);
  EXPECT_EQ(script->seen[1].notes[0].status, "firing");
  EXPECT_EQ(st().state.current, phase::firing);
}

TEST_F(EvaluatorActor, ConflictAdoptsTheStoredState) {
  script->mode = store_script::conflict;
  script->stored.current = phase::firing;
  script->stored.incident_id = "other";
  script->stored.seq = 7;
  script->stored.last_bucket = t0;
  feed(batch(t0, 150));
  EXPECT_EQ(st().conflicts, 1u);
  EXPECT_EQ(st().fired, 0u);
  EXPECT_EQ(st().state.seq, 7);
  EXPECT_EQ(st().state.incident_id, "other");
  script->mode = store_script::apply;
  feed(batch(t0 + minute_us, 10));  // resolves the stored incident
  ASSERT_EQ(script->seen.size(), 2u);
  EXPECT_EQ(script->seen[1].expected_seq, 7);
  ASSERT_EQ(script->seen[1].notes.size(), 1u);
  EXPECT_EQ(script->seen[1].notes[0].incident_id, "other");
}

// A conflict (another writer, e.g. the previous owner in a hand-over, stored a state that
// has not seen this batch's bucket): the feed does not send unchanged buckets again, so the
// evaluator evaluates the batch again from the stored state, a second later.
TEST_F(EvaluatorActor, AfterAConflictTheBatchIsEvaluatedAgainFromTheStoredState) {
  script->mode = store_script::conflict;
  script->stored.current = phase::ok;
  script->stored.seq = 7;
  script->stored.last_bucket = t0 - minute_us;  // the other writer stopped before t0
  feed(batch(t0, 150));
  EXPECT_EQ(st().conflicts, 1u);
  EXPECT_EQ(st().state.seq, 7);
  ASSERT_EQ(script->seen.size(), 1u);
  script->mode = store_script::apply;
  sched->advance_time(std::chrono::seconds(1));
  sched->run();
  ASSERT_EQ(script->seen.size(), 2u);
  EXPECT_EQ(script->seen[1].expected_seq, 7);
  EXPECT_EQ(script->seen[1].next.current, phase::firing);
  EXPECT_EQ(script->seen[1].next.last_bucket, t0);
  ASSERT_EQ(script->seen[1].notes.size(), 1u);
  EXPECT_EQ(script->seen[1].notes[0].status, "firing");
  // Evaluated again once: nothing further is saved.
  sched->advance_time(std::chrono::seconds(5));
  sched->run();
  EXPECT_EQ(script->seen.size(), 2u);
}

TEST_F(EvaluatorActor, RepeatTimerNotifiesAStillFiringAlertUnderTheSameIncident) {
  auto repeating = rule;
  repeating.repeat_interval_sec = 3600;
  repeating.version = 2;
  caf::anon_send(evaluator, rule_set_atom::value, repeating);
  sched->run();
  EXPECT_EQ(sched->trigger_timeouts(), 0u);  // nothing fires: nothing is firing
  feed(batch(t0, 150));
  ASSERT_EQ(script->seen.size(), 1u);
  auto incident = script->seen[0].notes.at(0).alert_id;
  // The hour passes at once: exactly one repeat, same incident, new alert id, "repeat": 1.
  // (trigger_timeouts also fires the finished save's request timer: CAF 0.17 never cancels
  // it, and an answered request ignores it.)
  sched->trigger_timeouts();
  sched->run();
  ASSERT_EQ(script->seen.size(), 2u);
  auto& rep = script->seen[1];
  ASSERT_EQ(rep.notes.size(), 1u);
  EXPECT_EQ(rep.notes[0].status, "firing");
  EXPECT_EQ(rep.notes[0].incident_id, incident);
  EXPECT_NE(rep.notes[0].alert_id, incident);
  EXPECT_EQ(rep.notes[0].repeat, 1);
  EXPECT_NE(rep.notes[0].payload.find("\"repeat\":1"), std::string::npos);
  EXPECT_EQ(rep.next.repeats, 1);
  EXPECT_EQ(st().repeats_sent, 1u);
  EXPECT_EQ(st().fired, 1u);  // a repeat is not a new firing
  // The next hour: repeat 2.
  sched->trigger_timeouts();
  sched->run();
  ASSERT_EQ(script->seen.size(), 3u);
  EXPECT_EQ(script->seen[2].notes.at(0).repeat, 2);
  // Resolved: the pending timer is stale and sends nothing.
  feed(batch(t0 + minute_us, 10));
  ASSERT_EQ(script->seen.size(), 4u);
  EXPECT_EQ(script->seen[3].notes.at(0).status, "resolved");
  sched->trigger_timeouts();
  sched->run();
  EXPECT_EQ(script->seen.size(), 4u);
}

TEST_F(EvaluatorActor, RepeatIsOffByDefault) {
  feed(batch(t0, 150));
  ASSERT_EQ(script->seen.size(), 1u);
  sched->trigger_timeouts();
  sched->run();
  EXPECT_EQ(script->seen.size(), 1u);
}

TEST_F(EvaluatorActor, NewDefinitionAppliesFromTheNextBucket) {
  feed(batch(t0, 150));
  EXPECT_EQ(st().state.current, phase::firing);
  auto changed = rule;
  changed.threshold = 1000;
  changed.version = 2;
  caf::anon_send(evaluator, rule_set_atom::value, changed);
  sched->run();
  feed(batch(t0 + minute_us, 150));  // below the new threshold: resolves
  ASSERT_EQ(script->seen.size(), 2u);
  EXPECT_EQ(script->seen[1].notes.at(0).status, "resolved");
}

} // namespace
} // namespace joule::rules
