// The refresh actor's schedule under simulated time.
#include <gtest/gtest.h>

#include <caf/event_based_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "db/refresh_actor.hpp"
#include "tests/support/deterministic.hpp"

using namespace joule;
using namespace joule::test;

namespace {

struct jobs_seen {
  std::vector<caf::response_promise> pending;
  int total = 0;
};

// Test-only message: finish every running job with this status.
using finish_atom = caf::atom_constant<caf::atom("finish")>;

// Untyped so that it can take finish_atom; the refresh actor sees a db_worker_actor.
caf::behavior mock_worker(caf::event_based_actor* self, std::shared_ptr<jobs_seen> seen) {
  return {
      [self, seen](db_job&) {
        ++seen->total;
        seen->pending.push_back(self->make_response_promise());
        return seen->pending.back();
      },
      [seen](finish_atom, int status) {
        for (auto& rp : seen->pending)
          if (status == 200)
            rp.deliver(db_done{});
          else
            rp.deliver(make_error(errc::unavailable, "db_unavailable", "down"));
        seen->pending.clear();
      },
  };
}

struct RefreshSchedule : ::testing::Test, deterministic {
  std::shared_ptr<jobs_seen> seen = std::make_shared<jobs_seen>();
  refresh_actor actor;
  caf::actor worker_handle;

  void start(std::chrono::milliseconds interval) {
    worker_handle = keep(sys->spawn(mock_worker, seen));
    auto worker = caf::actor_cast<db_worker_actor>(worker_handle);
    db::refresh_config cfg;
    cfg.rollup = "device_1m";
    cfg.schedule_interval = interval;
    actor = keep(sys->spawn(db::refresh, cfg, worker));
    run();
  }
  void finish_all(int status) {
    caf::anon_send(worker_handle, finish_atom::value, status);
    run();
  }
};

TEST_F(RefreshSchedule, RunsAtStartThenEveryInterval) {
  start(std::chrono::seconds(30));
  EXPECT_EQ(seen->total, 1) << "first cycle at start (materialises history)";
  finish_all(200);
  EXPECT_EQ(sched->advance_time(std::chrono::seconds(29)), 0u);
  run();
  EXPECT_EQ(seen->total, 1);
  EXPECT_EQ(sched->advance_time(std::chrono::seconds(1)), 1u);
  run();
  EXPECT_EQ(seen->total, 2);
  finish_all(200);
  sched->advance_time(std::chrono::seconds(30));
  run();
  EXPECT_EQ(seen->total, 3);
}

TEST_F(RefreshSchedule, NeverTwoCyclesAtOnceAndTheNextWaitsForTheSlowOne) {
  start(std::chrono::seconds(30));
  // The first cycle is slow: no tick is pending and a manual tick is ignored while it runs.
  EXPECT_EQ(sched->advance_time(std::chrono::minutes(5)), 0u);
  caf::anon_send(actor, tick_atom::value);
  run();
  EXPECT_EQ(seen->total, 1);
  finish_all(200);
  EXPECT_EQ(sched->advance_time(std::chrono::seconds(30)), 1u);
  run();
  EXPECT_EQ(seen->total, 2);
}

TEST_F(RefreshSchedule, AFailedCycleRetriesAfterTheIntervalNotInATightLoop) {
  start(std::chrono::seconds(10));
  finish_all(503);
  run();
  EXPECT_EQ(seen->total, 1);
  EXPECT_EQ(sched->advance_time(std::chrono::seconds(10)), 1u);
  run();
  EXPECT_EQ(seen->total, 2);
}

// Issue 9 §4: rollups catching up share the process's slots (refresh.catchup_parallel): with
// one slot the second rollup's first cycle (a potential catch-up) waits until the first's is
// done, then runs; a slot held by an actor that dies is given back.
TEST_F(RefreshSchedule, CatchUpCyclesWaitForASlotOfTheGate) {
  auto gate = std::make_shared<db::catchup_gate>(1);
  worker_handle = keep(sys->spawn(mock_worker, seen));
  auto worker = caf::actor_cast<db_worker_actor>(worker_handle);
  auto spawn = [&](const char* name) {
    db::refresh_config cfg;
    cfg.rollup = name;
    cfg.schedule_interval = std::chrono::seconds(30);
    cfg.gate = gate;
    return keep(sys->spawn(db::refresh, cfg, worker));
  };
  // With a gate, every rollup queues at spawn and the first cycles start 100 ms later: the
  // coarser household_5m gets the slot although device_1m was spawned first.
  auto a = spawn("device_1m");
  auto b = spawn("household_5m");
  run();
  EXPECT_EQ(seen->total, 0);
  sched->advance_time(std::chrono::milliseconds(100));
  run();
  EXPECT_EQ(seen->total, 1);
  sched->advance_time(std::chrono::seconds(1));
  run();
  EXPECT_EQ(seen->total, 1) << "the second catch-up waits for the slot";
  finish_all(200);
  sched->advance_time(std::chrono::milliseconds(200));
  run();
  EXPECT_EQ(seen->total, 2) << "and runs once the first is done";
  // device_1m now holds the slot: an actor that dies gives it back.
  caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
  run();
  std::shared_ptr<void> ticket;
  EXPECT_TRUE(gate->try_take(ticket, 0) != nullptr);
  (void)b;
}

TEST(CatchUpGate, AFreeSlotGoesToTheWaitingRollupWithTheHighestPriority) {
  db::catchup_gate gate{1};
  std::shared_ptr<void> t1m, t5m, t1h;
  auto held = gate.try_take(t1m, 60);  // device_1m first: the slot was free
  ASSERT_TRUE(held);
  EXPECT_FALSE(gate.try_take(t5m, 300));
  EXPECT_FALSE(gate.try_take(t1h, 3600));
  held.reset();
  EXPECT_FALSE(gate.try_take(t5m, 300)) << "device_1h waits with a higher priority";
  auto h = gate.try_take(t1h, 3600);
  ASSERT_TRUE(h);
  EXPECT_FALSE(t1h) << "left the queue";
  h.reset();
  // A waiter that gives up (its actor died) leaves the queue.
  std::shared_ptr<void> t2h, t3m;
  auto h5 = gate.try_take(t5m, 300);
  EXPECT_TRUE(h5);
  EXPECT_FALSE(gate.try_take(t2h, 7200));
  EXPECT_FALSE(gate.try_take(t3m, 180));
  t2h.reset();
  h5.reset();
  EXPECT_TRUE(gate.try_take(t3m, 180)) << "nobody of higher priority waits any more";
}

} // namespace
