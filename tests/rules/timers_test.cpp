// Group timers and repeat timers, deterministically: the decisions are pure functions
// (rules/timing.hpp) of the durable state, and the actors that turn them into timers run under
// CAF's test coordinator with a wall clock that follows its simulated time. No sleeps: time
// moves only when a test advances it, to the microsecond.
#include <gtest/gtest.h>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <caf/send.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "core/timefmt.hpp"
#include "rules/alert_evaluator.hpp"
#include "rules/notifier.hpp"
#include "rules/timing.hpp"
#include "tests/support/deterministic.hpp"

namespace joule::rules {
namespace {

using namespace std::chrono_literals;
constexpr std::int64_t sec = 1'000'000;
constexpr std::int64_t wall0 = 1'800'000'000LL * sec;

// --- the pure decisions

TEST(GroupTiming, ANewGroupWaitsGroupWait) {
  EXPECT_EQ(group_flush_at({}, wall0, 30 * sec, 300 * sec), wall0 + 30 * sec);
  EXPECT_EQ(group_flush_at({}, wall0, 0, 300 * sec), wall0);  // group_wait 0: at once
}

TEST(GroupTiming, AlertsJoinTheScheduledFlush) {
  group_times g{wall0 + 25 * sec, std::nullopt};
  EXPECT_EQ(group_flush_at(g, wall0 + 10 * sec, 30 * sec, 300 * sec), wall0 + 25 * sec);
  // Even when it is already due (the notifier has not claimed it yet): no later flush.
  EXPECT_EQ(group_flush_at(g, wall0 + 40 * sec, 30 * sec, 300 * sec), wall0 + 25 * sec);
}

TEST(GroupTiming, AfterAFlushTheNextWaitsGroupIntervalThenGroupWaitAgain) {
  group_times flushed{std::nullopt, wall0};
  // Inside the interval: exactly last flush + group_interval.
  EXPECT_EQ(group_flush_at(flushed, wall0 + 1 * sec, 30 * sec, 300 * sec), wall0 + 300 * sec);
  EXPECT_EQ(group_flush_at(flushed, wall0 + 299 * sec, 30 * sec, 300 * sec), wall0 + 300 * sec);
  // The interval is over: the group is quiet, treated as new (group_wait from now).
  EXPECT_EQ(group_flush_at(flushed, wall0 + 300 * sec, 30 * sec, 300 * sec), wall0 + 330 * sec);
  EXPECT_EQ(group_flush_at(flushed, wall0 + 900 * sec, 30 * sec, 300 * sec), wall0 + 930 * sec);
}

TEST(RepeatTiming, DueOneIntervalAfterTheLatestNotificationOnlyWhileFiring) {
  eval_state s;
  s.current = phase::firing;
  s.last_notified_at = wall0;
  EXPECT_EQ(repeat_due_at(s, 60), wall0 + 60 * sec);
  EXPECT_FALSE(repeat_due_at(s, 0));  // repeats off
  s.current = phase::resolved;
  EXPECT_FALSE(repeat_due_at(s, 60));
  s.current = phase::pending;
  EXPECT_FALSE(repeat_due_at(s, 60));
}

// --- simulated wall clock: wall0 + the test coordinator's time since the fixture began

caf::scheduler::test_coordinator* clock_sched = nullptr;
caf::actor_clock::time_point clock_origin;

std::int64_t simulated_now() {
  return wall0 +
         std::chrono::duration_cast<std::chrono::microseconds>(clock_sched->clock().now() -
                                                               clock_origin)
             .count();
}

class Timers : public ::testing::Test {
protected:
  Timers() {
    clock_sched = t.sched;
    clock_origin = t.sched->clock().now();
  }
  ~Timers() override { clock_sched = nullptr; }

  std::int64_t now() const { return simulated_now(); }
  void advance(caf::timespan d) {
    t.sched->advance_time(d);
    t.run();
  }

  test::deterministic t;
};

// --- repeat timers: the evaluator with a mock store that applies every save

struct saves {
  std::vector<state_change> seen;
};

alert_store_actor::behavior_type applying_store(alert_store_actor::pointer self,
                                                std::shared_ptr<saves> log) {
  return {
      [self, log](state_change& c) -> caf::typed_response_promise<save_outcome> {
        auto rp = self->make_response_promise<save_outcome>();
        log->seen.push_back(c);
        auto cur = c.next;
        cur.seq = c.expected_seq + 1;
        rp.deliver(save_outcome{save_outcome::applied, cur, {}});
        return rp;
      },
  };
}

class RepeatTimer : public Timers {
protected:
  RepeatTimer() {
    log = std::make_shared<saves>();
    store = t.keep(t.sys->spawn(applying_store, log));
    rule.id = "11111111-0000-4000-8000-000000000002";
    rule.metric = metric_kind::power_w_avg;
    rule.threshold = 100;
    rule.cooldown_sec = 0;
    rule.repeat_interval_sec = 60;
    rule.webhook_url = "http://hooks.test/x";
    rule.webhook_secret = "k";
  }

  alert_evaluator_actor spawn(const eval_state& initial) {
    auto e = t.keep(t.sys->spawn(alert_evaluator_clocked, rule, initial, store,
                                 std::chrono::milliseconds(5000), &simulated_now));
    t.run();
    advance(caf::timespan{0});  // a timer due now (an overdue repeat) fires without time passing
    return e;
  }

  static eval_state firing_since(std::int64_t notified_at, int repeats = 0) {
    eval_state s;
    s.current = phase::firing;
    s.incident_id = "22222222-0000-4000-8000-000000000001";
    s.fired_at = notified_at;
    s.last_notified_at = notified_at;
    s.repeats = repeats;
    s.seq = 3;
    return s;
  }

  std::shared_ptr<saves> log;
  alert_store_actor store;
  alert_rule rule;
};

TEST_F(RepeatTimer, RepeatsExactlyOneIntervalAfterTheLatestNotificationAndKeepsTheRhythm) {
  spawn(firing_since(now()));
  advance(59s + 999ms);
  EXPECT_TRUE(log->seen.empty());  // 1 ms early: nothing
  advance(1ms);
  ASSERT_EQ(log->seen.size(), 1u);
  auto& rep = log->seen[0];
  ASSERT_EQ(rep.notes.size(), 1u);
  EXPECT_EQ(rep.notes[0].status, "firing");
  EXPECT_EQ(rep.notes[0].repeat, 1);
  EXPECT_EQ(rep.notes[0].incident_id, "22222222-0000-4000-8000-000000000001");
  EXPECT_NE(rep.notes[0].alert_id, rep.notes[0].incident_id);  // news, not a retry
  EXPECT_EQ(rep.next.last_notified_at, wall0 + 60 * sec);
  // The next one counts from that notification: 60 s later, not earlier.
  advance(59s);
  EXPECT_EQ(log->seen.size(), 1u);
  advance(1s);
  ASSERT_EQ(log->seen.size(), 2u);
  EXPECT_EQ(log->seen[1].notes.at(0).repeat, 2);
  EXPECT_EQ(log->seen[1].next.last_notified_at, wall0 + 120 * sec);
}

TEST_F(RepeatTimer, AfterARestartTheStoredLatestNotificationSetsTheFirstRepeat) {
  // Notified 50 s before this evaluator started (a restart): due in 10 s, not in 60.
  spawn(firing_since(now() - 50 * sec, 4));
  advance(9s);
  EXPECT_TRUE(log->seen.empty());
  advance(1s);
  ASSERT_EQ(log->seen.size(), 1u);
  EXPECT_EQ(log->seen[0].notes.at(0).repeat, 5);
}

TEST_F(RepeatTimer, AnOverdueRepeatAfterDowntimeIsSentOnceAtStart) {
  spawn(firing_since(now() - 500 * sec));
  ASSERT_EQ(log->seen.size(), 1u);  // at once, one notification (not eight)
  advance(59s);
  EXPECT_EQ(log->seen.size(), 1u);
  advance(1s);
  EXPECT_EQ(log->seen.size(), 2u);
}

TEST_F(RepeatTimer, ALongerIntervalMovesThePendingRepeatAndResolvingCancelsIt) {
  auto e = spawn(firing_since(now()));
  advance(30s);
  auto longer = rule;
  longer.repeat_interval_sec = 120;
  longer.version = 2;
  caf::anon_send(e, rule_set_atom::value, longer);
  t.run();
  advance(30s);  // the old due time passes: nothing
  EXPECT_TRUE(log->seen.empty());
  advance(60s);  // 120 s after the notification
  ASSERT_EQ(log->seen.size(), 1u);
  // Resolved by a bucket: the timer for +120 s sends nothing.
  bucket_value b;
  b.start = floor_to(now(), minute_us) - minute_us;
  b.width = minute_us;
  b.power_sum = 1;
  b.power_count = 1;
  b.closed = true;
  caf::anon_send(e, feed_batch{{b}, now(), 0, std::nullopt});
  t.run();
  ASSERT_EQ(log->seen.size(), 2u);
  EXPECT_EQ(log->seen[1].notes.at(0).status, "resolved");
  advance(600s);
  EXPECT_EQ(log->seen.size(), 2u);
}

// --- group timers: the notifier wakes up when the next grouped row is due

// A pool that answers the notifier's claim jobs from a script instead of PostgreSQL.
struct pool_script {
  std::vector<std::int64_t> claims_at;       // simulated wall time of each claim job
  std::vector<claim_result> answers;         // answered in order; empty claims after that
  std::vector<std::vector<am_firing>> am_pages;  // Alertmanager re-post pages, in order
  std::size_t am_reads = 0;
  std::vector<std::string> other_jobs;       // labels of other jobs (recording attempts)
};

db_pool_actor::behavior_type scripted_pool(db_pool_actor::pointer self,
                                           std::shared_ptr<pool_script> script) {
  return {
      [](series_query&) -> series_result { return {}; },
      [](top_query&) -> top_result { return {}; },
      [self, script](db_job& job) -> db_done {
        (void)self;
        if (job.label == "alerts.alertmanager_firing") {
          auto k = script->am_reads++;
          return db_done{k < script->am_pages.size() ? script->am_pages[k]
                                                     : std::vector<am_firing>{}};
        }
        if (job.label != "alerts.claim") {
          script->other_jobs.push_back(job.label);
          return {};
        }
        auto k = script->claims_at.size();
        script->claims_at.push_back(simulated_now());
        return db_done{k < script->answers.size() ? script->answers[k] : claim_result{}};
      },
      [](deadline_atom, std::uint64_t) {},
      [](status_atom) -> std::string { return "{}"; },
  };
}

class GroupTimer : public Timers {
protected:
  GroupTimer() {
    script = std::make_shared<pool_script>();
    pool = t.keep(t.sys->spawn(scripted_pool, script));
    cfg.poll_interval = std::chrono::hours(1);  // only the wake-ups claim in these tests
    cfg.alertmanager_resend = std::chrono::hours(1);
    cfg.now = &simulated_now;
  }

  void start() {
    auto p = pool;
    auto sent_log = sent;
    auto held = answers;
    notifier_ = t.keep(t.sys->spawn(
        notifier, cfg, [p] { return p; },
        webhook_sender{[sent_log, held](webhook_request r,
                                        std::function<void(webhook_response)> done) {
          sent_log->push_back(std::move(r));
          held->push_back(std::move(done));  // answered when the test says so
        }}));
    t.run();
  }

  // Answers the oldest unanswered POST with `status`.
  void answer(int status) {
    ASSERT_FALSE(answers->empty());
    auto done = std::move(answers->front());
    answers->erase(answers->begin());
    done(webhook_response{status, {}, {}});
    t.run();
  }

  static outbox_item group_post(const std::string& id) {
    outbox_item item;
    item.alert_id = id;
    item.alert_ids = {id + "-a", id + "-b"};
    item.payload = "{\"group_key\":\"g\",\"alerts\":[]}";
    item.webhook_url = "http://hooks.test/grouped";
    item.webhook_secret = "s";
    item.destination = "http://hooks.test:80";
    item.attempts = 1;
    return item;
  }

  std::shared_ptr<pool_script> script;
  std::shared_ptr<std::vector<webhook_request>> sent =
      std::make_shared<std::vector<webhook_request>>();
  std::shared_ptr<std::vector<std::function<void(webhook_response)>>> answers =
      std::make_shared<std::vector<std::function<void(webhook_response)>>>();
  db_pool_actor pool;
  notifier_config cfg;
  notifier_actor notifier_;
};

TEST_F(GroupTimer, TheGroupIsClaimedExactlyAtItsFlushTimeNotAtThePoll) {
  // The first claim (at start) finds nothing due, and a group flushing after group_wait 30 s.
  claim_result first;
  first.next_due = wall0 + 30 * sec;
  claim_result flush;
  flush.items = {group_post("post-1")};
  script->answers = {first, flush};
  start();
  ASSERT_EQ(script->claims_at.size(), 1u);
  advance(29s + 999ms);
  EXPECT_EQ(script->claims_at.size(), 1u);  // not early
  advance(1ms);
  ASSERT_GE(script->claims_at.size(), 2u);
  EXPECT_EQ(script->claims_at[1], wall0 + 30 * sec);
  ASSERT_EQ(sent->size(), 1u);  // the group: one POST
  EXPECT_EQ((*sent)[0].url, "http://hooks.test/grouped");
}

TEST_F(GroupTimer, AnEarlierFlushReplacesTheTimerAndALaterOneWaitsForIt) {
  claim_result first;
  first.next_due = wall0 + 300 * sec;  // group_interval of a group that just flushed
  script->answers = {first};
  start();
  // A save nudges; its claim finds a new group due after group_wait 10 s: earlier, it wins.
  claim_result nudged;
  nudged.next_due = wall0 + 10 * sec;
  claim_result at_ten;
  at_ten.next_due = wall0 + 300 * sec;  // the interval one is still ahead
  script->answers.push_back(nudged);
  script->answers.push_back(at_ten);
  caf::anon_send(notifier_, nudge_atom::value);
  t.run();
  ASSERT_EQ(script->claims_at.size(), 2u);
  advance(10s);
  ASSERT_EQ(script->claims_at.size(), 3u);
  EXPECT_EQ(script->claims_at[2], wall0 + 10 * sec);
  advance(289s);
  EXPECT_EQ(script->claims_at.size(), 3u);
  advance(1s);
  ASSERT_EQ(script->claims_at.size(), 4u);
  EXPECT_EQ(script->claims_at[3], wall0 + 300 * sec);
}

TEST_F(GroupTimer, ADueTimeInThePastClaimsAtOnce) {
  claim_result first;
  first.next_due = wall0 - 1 * sec;  // became due between the claim and its answer
  script->answers = {first};
  start();
  EXPECT_EQ(script->claims_at.size(), 2u);
  EXPECT_EQ(script->claims_at[1], wall0);
}

// --- Alertmanager re-posts: bounded pages, one after the other

am_firing firing(int k, const std::string& url) {
  auto id = "33333333-0000-4000-8000-00000000000" + std::to_string(k);
  return {id, url,
          "{\"alert_id\":\"" + id + "\",\"incident_id\":\"" + id + "\",\"rule_id\":\"" + id +
              "\",\"status\":\"firing\",\"scope\":\"device\",\"scope_id\":\"" + id +
              "\",\"metric\":\"power_w_max\",\"fired_at\":\"2026-12-01T00:00:00Z\"}"};
}

std::size_t alerts_in(const std::string& body) {
  std::size_t n = 0;
  for (auto at = body.find("\"labels\""); at != std::string::npos;
       at = body.find("\"labels\"", at + 1))
    ++n;
  return n;
}

TEST_F(GroupTimer, AlertmanagerRePostsGoOutInBoundedPagesOneAfterTheOther) {
  cfg.am_page_size = 2;
  cfg.alertmanager_resend = std::chrono::seconds(60);
  const std::string am = "http://am.test:9093";
  script->am_pages = {{firing(1, am), firing(2, am)}, {firing(3, am), firing(4, am)},
                      {firing(5, am)}};
  start();
  EXPECT_TRUE(sent->empty());
  advance(60s);  // the re-post timer: page 1
  ASSERT_EQ(sent->size(), 1u);
  EXPECT_EQ((*sent)[0].url, am + "/api/v2/alerts");
  EXPECT_EQ(alerts_in((*sent)[0].body), 2u);
  EXPECT_EQ(script->am_reads, 1u);  // page 2 waits for page 1's answer
  answer(200);
  ASSERT_EQ(sent->size(), 2u);
  EXPECT_EQ(alerts_in((*sent)[1].body), 2u);
  answer(503);  // a failed page does not stop the pass (the next one makes it up)
  ASSERT_EQ(sent->size(), 3u);
  EXPECT_EQ(alerts_in((*sent)[2].body), 1u);
  answer(200);
  EXPECT_EQ(script->am_reads, 3u);  // a short page ends the pass
  EXPECT_EQ(sent->size(), 3u);
}

} // namespace
} // namespace joule::rules
