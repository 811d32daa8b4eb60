// The cache broker under the deterministic scheduler: single-flight, hits, the breaker.
#include <gtest/gtest.h>

#include <caf/event_based_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "cache/cache_broker.hpp"
#include "tests/support/deterministic.hpp"

using namespace joule;
using namespace joule::test;

namespace {

// What the mocks saw, shared with the test.
struct world {
  std::map<std::string, std::string> redis;  // key -> value
  bool redis_down = false;
  int gets = 0, puts = 0, pings = 0;
  std::vector<caf::response_promise> pool_jobs;
  std::string pool_body;
};

// Test-only message: answer every held job (a promise must be delivered by its actor).
using release_atom = caf::atom_constant<caf::atom("release")>;

redis_worker_actor::behavior_type mock_redis(redis_worker_actor::pointer,
                                             std::shared_ptr<world> w) {
  return {
      [w](get_atom, const std::string& key) -> redis_reply {
        ++w->gets;
        if (w->redis_down)
          return {redis_reply::error, "down"};
        auto it = w->redis.find(key);
        return it == w->redis.end() ? redis_reply{redis_reply::miss, {}}
                                    : redis_reply{redis_reply::hit, it->second};
      },
      [w](put_atom, const std::string& key, const std::string& value,
          std::int64_t) -> redis_reply {
        ++w->puts;
        if (w->redis_down)
          return {redis_reply::error, "down"};
        w->redis[key] = value;
        return {redis_reply::hit, {}};
      },
      [w](ping_atom) -> redis_reply {
        ++w->pings;
        return {w->redis_down ? redis_reply::error : redis_reply::hit, {}};
      },
  };
}

// A pool that answers only when the test says so (untyped, so it can take release_atom; the
// broker sees it through a db_pool_actor handle).
caf::behavior mock_pool(caf::event_based_actor* self, std::shared_ptr<world> w) {
  return {
      [self, w](db_job&) {
        w->pool_jobs.push_back(self->make_response_promise());
        return w->pool_jobs.back();
      },
      [w](release_atom) {
        for (auto& rp : w->pool_jobs)
          rp.deliver(db_answer{200, w->pool_body, false, {}});
        w->pool_jobs.clear();
      },
  };
}

cache::cache_config local_off() {
  cache::cache_config cfg;
  cfg.local_ttl = std::chrono::milliseconds(0);
  return cfg;
}

struct CacheBroker : ::testing::Test, deterministic {
  std::shared_ptr<world> w = std::make_shared<world>();
  cache_actor broker;
  caf::actor pool_handle;
  std::vector<cache_answer> answers;

  void start(cache::cache_config cfg = local_off()) {
    auto pool = caf::actor_cast<db_pool_actor>(keep(sys->spawn(mock_pool, w)));
    pool_handle = caf::actor_cast<caf::actor>(pool);
    auto spawn_redis = [this](int) { return keep(sys->spawn(mock_redis, w)); };
    broker = keep(sys->spawn(cache::cache_broker, cfg, spawn_redis, [pool] { return pool; }));
    run();
  }

  void read(const std::string& key) {
    cached_read r;
    r.key = key;
    r.job.run = [](db::session&) -> db_answer { throw std::logic_error("mock pool runs nothing"); };
    r.reply = [this](cache_answer a) { answers.push_back(std::move(a)); };
    caf::anon_send(broker, std::move(r));
  }

  void answer_pool(const std::string& body) {
    w->pool_body = body;
    caf::anon_send(pool_handle, release_atom::value);
    run();
  }
};

TEST_F(CacheBroker, HundredConcurrentMissesMakeOneDatabaseQuery) {
  start();
  for (int i = 0; i < 100; ++i)
    read("k");
  run();
  ASSERT_EQ(w->pool_jobs.size(), 1u) << "single-flight: one computation per key";
  EXPECT_TRUE(answers.empty()) << "nobody is answered before the database is";
  answer_pool("{\"v\":1}");
  ASSERT_EQ(answers.size(), 100u);
  for (auto& a : answers) {
    EXPECT_EQ(a.answer.body, "{\"v\":1}");
    EXPECT_EQ(a.outcome, cache_outcome::miss);
  }
  EXPECT_EQ(w->puts, 1);
  // Now it is cached: the next read is a hit and asks nobody else.
  answers.clear();
  read("k");
  run();
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_EQ(answers[0].outcome, cache_outcome::hit);
  EXPECT_TRUE(w->pool_jobs.empty());
}

TEST_F(CacheBroker, DifferentKeysAreComputedSeparately) {
  start();
  read("a");
  read("b");
  read("a");
  run();
  EXPECT_EQ(w->pool_jobs.size(), 2u);
  answer_pool("x");
  EXPECT_EQ(answers.size(), 3u);
}

TEST_F(CacheBroker, BreakerBypassesADeadRedisAndProbesItBackIn) {
  auto cfg = local_off();
  cfg.breaker_failures = 3;
  cfg.breaker_open = std::chrono::milliseconds(2000);
  start(cfg);
  w->redis_down = true;
  for (int i = 0; i < 3; ++i) {
    read("k" + std::to_string(i));
    run();
    answer_pool("x");
  }
  EXPECT_EQ(w->gets, 3);
  for (auto& a : answers)
    EXPECT_EQ(a.outcome, cache_outcome::bypass);
  // Open: further reads do not touch Redis at all.
  answers.clear();
  read("k9");
  run();
  answer_pool("x");
  EXPECT_EQ(w->gets, 3);
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_EQ(answers[0].outcome, cache_outcome::bypass);
  // Redis comes back; after the open period one probe closes the breaker.
  w->redis_down = false;
  // Fires the probe timer (and stale request-timeout timers, which do nothing).
  EXPECT_GE(sched->advance_time(std::chrono::milliseconds(2000)), 1u);
  run();
  EXPECT_EQ(w->pings, 1);
  answers.clear();
  read("k9");
  run();
  EXPECT_EQ(w->gets, 4) << "Redis is asked again";
  answer_pool("x");
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_EQ(answers[0].outcome, cache_outcome::miss);
}

TEST_F(CacheBroker, DisabledCacheIsABypassThatStillCoalesces) {
  auto cfg = local_off();
  cfg.enabled = false;
  start(cfg);
  read("k");
  read("k");
  run();
  EXPECT_EQ(w->gets, 0);
  EXPECT_EQ(w->pool_jobs.size(), 1u);
  answer_pool("x");
  ASSERT_EQ(answers.size(), 2u);
  EXPECT_EQ(answers[0].outcome, cache_outcome::bypass);
  EXPECT_EQ(w->puts, 0);
}

TEST_F(CacheBroker, NearCacheAnswersHotKeysWithoutRedisForLocalTtl) {
  auto cfg = local_off();
  cfg.local_ttl = std::chrono::milliseconds(1000);
  start(cfg);
  read("k");
  run();
  answer_pool("v1");
  ASSERT_EQ(answers.size(), 1u);
  int gets = w->gets;
  for (int i = 0; i < 10; ++i)
    read("k");
  run();
  EXPECT_EQ(w->gets, gets) << "hot key answered in-process";
  ASSERT_EQ(answers.size(), 11u);
  EXPECT_EQ(answers.back().outcome, cache_outcome::hit);
  EXPECT_EQ(answers.back().answer.body, "v1");
  // After local_ttl the near cache lets go; Redis (which has it) answers again.
  sched->advance_time(std::chrono::milliseconds(1001));
  run();
  read("k");
  run();
  EXPECT_EQ(w->gets, gets + 1);
  EXPECT_EQ(answers.back().outcome, cache_outcome::hit);
}

TEST(CacheTtl, JitterStaysWithinTheConfiguredBand) {
  cache::cache_config cfg;
  std::minstd_rand rng{7};
  for (int i = 0; i < 1000; ++i) {
    auto settled = cache::ttl_ms(cfg, false, rng);
    EXPECT_GE(settled, 66000);
    EXPECT_LE(settled, 72000);
    auto live = cache::ttl_ms(cfg, true, rng);
    EXPECT_GE(live, 5500);
    EXPECT_LE(live, 6000);
  }
}

} // namespace
