// The live tail's cycle under simulated time (publish, withdraw on failure, never two cycles
// at once) and the eviction of settled parts by announced change.
#include <gtest/gtest.h>

#include <caf/event_based_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "cache/near_cache.hpp"
#include "cache/settled_keys.hpp"
#include "db/change_listener.hpp"
#include "db/live_tail.hpp"
#include "tests/support/deterministic.hpp"

using namespace joule;
using namespace joule::test;

namespace {

struct jobs_seen {
  std::vector<caf::response_promise> pending;
  std::vector<std::string> labels;
};

using finish_atom = caf::atom_constant<caf::atom("finish")>;

caf::behavior mock_worker(caf::event_based_actor* self, std::shared_ptr<jobs_seen> seen) {
  return {
      [self, seen](db_job& job) {
        seen->labels.push_back(job.label);
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

struct LiveTailCycle : ::testing::Test, deterministic {
  std::shared_ptr<jobs_seen> seen = std::make_shared<jobs_seen>();
  std::shared_ptr<db::live_tail_holder> holder = std::make_shared<db::live_tail_holder>();
  caf::actor worker;

  void start() {
    worker = keep(sys->spawn(mock_worker, seen));
    db::live_tail_config cfg;
    cfg.interval = std::chrono::seconds(1);
    cfg.holder = holder;
    keep(sys->spawn(db::live_tail, cfg, caf::actor_cast<db_worker_actor>(worker)));
    run();
  }
  void finish_all(int status) {
    caf::anon_send(worker, finish_atom::value, status);
    run();
  }
  void tick() {
    sched->advance_time(std::chrono::seconds(1));
    run();
  }
};

TEST_F(LiveTailCycle, PublishesASnapshotPerCycleAndWithdrawsItWhenACycleFails) {
  start();
  ASSERT_EQ(seen->labels.size(), 1u) << "first cycle at start";
  EXPECT_EQ(seen->labels[0], "live_tail");
  EXPECT_FALSE(holder->get()) << "nothing before the first cycle lands";
  finish_all(200);
  auto first = holder->get();
  ASSERT_TRUE(first);
  EXPECT_EQ(first->seq, 1u);
  EXPECT_TRUE(holder->fresh(std::chrono::seconds(3)));
  tick();
  ASSERT_EQ(seen->labels.size(), 2u) << "one cycle per interval";
  finish_all(200);
  ASSERT_TRUE(holder->get());
  EXPECT_EQ(holder->get()->seq, 2u);
  // A failed cycle (database gone) withdraws the snapshot: readers fall back to the database
  // instead of joining with a tail that stopped moving.
  tick();
  finish_all(503);
  EXPECT_FALSE(holder->get());
  // The next cycle rebuilds it.
  tick();
  finish_all(200);
  ASSERT_TRUE(holder->get());
  EXPECT_EQ(holder->get()->seq, 3u);
}

TEST_F(LiveTailCycle, NeverTwoCyclesAtOnce) {
  start();
  ASSERT_EQ(seen->labels.size(), 1u);
  // The first cycle is slow: ticks meanwhile start nothing.
  tick();
  tick();
  tick();
  EXPECT_EQ(seen->labels.size(), 1u);
  finish_all(200);
  tick();
  EXPECT_EQ(seen->labels.size(), 2u);
}

TEST(LiveTailHolder, AnOldSnapshotIsNotFresh) {
  db::live_tail_holder h;
  auto s = std::make_shared<db::live_snapshot>();
  s->taken = std::chrono::steady_clock::now() - std::chrono::seconds(10);
  h.set(s);
  EXPECT_TRUE(h.get());
  EXPECT_FALSE(h.fresh(std::chrono::seconds(3)));
}

TEST(LiveSnapshot, VersionTextAndFreshCapFollowTheRangesRead) {
  constexpr std::int64_t hour = 3600LL * 1'000'000;
  db::live_snapshot s;
  s.versions["household_5m"] = {{10 * hour, 7}, {12 * hour, 9}};
  EXPECT_EQ(s.version_text("household_5m", 10 * hour + 5, 12 * hour), std::to_string(10 * hour) + ":7");
  EXPECT_EQ(s.version_text("household_5m", 11 * hour, 13 * hour), std::to_string(12 * hour) + ":9");
  EXPECT_EQ(s.version_text("household_5m", 13 * hour, 14 * hour), "");
  EXPECT_EQ(s.version_text("device_1m", 0, 20 * hour), "");
  s.pending.push_back({"household_5m", 5 * hour, 5 * hour + 10, 111, {}});
  s.pending.push_back({"household_5m", 6 * hour, 6 * hour, 99, {"h1", "h2"}});
  s.pending.push_back({"device_1m", 5 * hour, 5 * hour, 50, {}});
  EXPECT_EQ(s.fresh_cap("household_5m", 0, 5 * hour), std::nullopt);
  EXPECT_EQ(s.fresh_cap("household_5m", 0, 5 * hour + 1), 111);
  EXPECT_EQ(s.fresh_cap("household_5m", 0, 7 * hour), 99);
  EXPECT_EQ(s.fresh_cap("household_5m", 6 * hour + 1, 7 * hour), std::nullopt);
  // A write that names its households sends only their answers to the database; one that
  // does not (empty list) sends every household's.
  EXPECT_TRUE(s.late_touches("household_5m", 6 * hour, 7 * hour, "h2"));
  EXPECT_FALSE(s.late_touches("household_5m", 5 * hour + 11, 7 * hour, "h3"));
  EXPECT_TRUE(s.late_touches("household_5m", 0, 7 * hour, "h3"));
  EXPECT_FALSE(s.late_touches("household_5m", 6 * hour + 1, 7 * hour, "h1"));
  EXPECT_FALSE(s.late_touches("household_5m", 7 * hour, 7 * hour, "h1"));
}

TEST(SettledEviction, AnAnnouncedChangeDropsExactlyTheOverlappingPartsOfItsRollup) {
  cache::near_cache store{std::chrono::milliseconds(1), 1000, false};
  auto now = caf::actor_clock::clock_type::now();
  auto put = [&](const std::string& rollup, std::int64_t lo, std::int64_t hi) {
    auto key = cache::settled_key(rollup, "h1", 300, lo, hi, "v");
    store.put(key, "body", now, std::chrono::minutes(10));
    return key;
  };
  auto a = put("household_5m", 0, 100);
  auto b = put("household_5m", 100, 200);
  auto c = put("device_1m", 0, 200);
  EXPECT_EQ(store.size(), 3u);
  // [150, 160) overlaps b only; [100, 100) and other rollups overlap nothing.
  EXPECT_EQ(cache::evict_settled(store, "household_5m", 150, 160), 1u);
  EXPECT_TRUE(store.find(a, now));
  EXPECT_FALSE(store.find(b, now));
  EXPECT_TRUE(store.find(c, now));
  EXPECT_EQ(cache::evict_settled(store, "household_5m", 100, 100), 0u);
  EXPECT_EQ(cache::evict_settled(store, "device_1h", 0, 1000), 0u);
  EXPECT_EQ(cache::evict_settled(store, "device_1m", 199, 1000), 1u);
  EXPECT_EQ(store.size(), 1u);
}

TEST(SettledEviction, NotificationPayloadsParse) {
  db::rollup_change c;
  ASSERT_TRUE(db::parse_rollup_change("refreshed household_5m 100 400", c));
  EXPECT_EQ(c.kind, "refreshed");
  EXPECT_EQ(c.rollup, "household_5m");
  EXPECT_EQ(c.lo, 100);
  EXPECT_EQ(c.hi, 400);
  EXPECT_TRUE(db::parse_rollup_change("pending device_1m -5 7", c));
  EXPECT_FALSE(db::parse_rollup_change("other device_1m 1 2", c));
  EXPECT_FALSE(db::parse_rollup_change("refreshed device_1m x 2", c));
  EXPECT_FALSE(db::parse_rollup_change("", c));
}

} // namespace
