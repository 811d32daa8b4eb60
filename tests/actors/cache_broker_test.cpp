// The cache broker under the deterministic scheduler: single-flight, hits, the breaker. Each
// read is played by a client actor doing what the HTTP side does: get; on a miss compute the
// answer on the (mock) pool and put it back.
#include <atomic>
#include <thread>

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
          rp.deliver(db_done{std::any(w->pool_body)});
        w->pool_jobs.clear();
      },
  };
}

cache::cache_config local_off() {
  cache::cache_config cfg;
  cfg.local_ttl = std::chrono::milliseconds(0);
  return cfg;
}

struct answer {
  std::string body;
  cache_outcome outcome = cache_outcome::bypass;
};

// One read as the HTTP side does it.
void client(caf::event_based_actor* self, cache_actor broker, caf::actor pool, std::string key,
            std::shared_ptr<std::vector<answer>> out) {
  self->request(broker, caf::infinite, get_atom::value, key)
      .then(
          [self, broker, pool, key, out](cache_lookup& l) {
            if (l.found) {
              out->push_back({l.body, l.outcome});
              return;
            }
            EXPECT_TRUE(l.compute);
            auto outcome = l.outcome;
            db_job job;
            self->request(pool, caf::infinite, std::move(job))
                .then(
                    [self, broker, key, out, outcome](db_done& d) {
                      auto body = std::any_cast<std::string>(d.value);
                      self->send(broker, put_atom::value, key, body, false);
                      out->push_back({body, outcome});
                    },
                    [](caf::error&) { ADD_FAILURE() << "the mock pool failed"; });
          },
          [out](caf::error&) { out->push_back({"error", cache_outcome::bypass}); });
}

struct CacheBroker : ::testing::Test, deterministic {
  std::shared_ptr<world> w = std::make_shared<world>();
  cache_actor broker;
  caf::actor pool_handle;
  std::shared_ptr<std::vector<answer>> got = std::make_shared<std::vector<answer>>();
  std::vector<answer>& answers = *got;

  void start(cache::cache_config cfg = local_off()) {
    pool_handle = keep(sys->spawn(mock_pool, w));
    auto spawn_redis = [this](int) { return keep(sys->spawn(mock_redis, w)); };
    broker = keep(sys->spawn(cache::cache_broker, cfg, spawn_redis));
    run();
  }

  void read(const std::string& key) { keep(sys->spawn(client, broker, pool_handle, key, got)); }

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
    EXPECT_EQ(a.body, "{\"v\":1}");
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
  EXPECT_EQ(answers.back().body, "v1");
  // After local_ttl the near cache lets go; Redis (which has it) answers again.
  sched->advance_time(std::chrono::milliseconds(1001));
  run();
  read("k");
  run();
  EXPECT_EQ(w->gets, gets + 1);
  EXPECT_EQ(answers.back().outcome, cache_outcome::hit);
}

TEST_F(CacheBroker, AFailedComputationReachesEveryWaiterAndIsNotCached) {
  start();
  for (int i = 0; i < 3; ++i)
    read("k");
  run();
  ASSERT_EQ(w->pool_jobs.size(), 1u);
  caf::anon_send(broker, drop_atom::value, std::string("k"),
                 make_error(errc::unavailable, "db_unavailable", "down"));
  run();
  ASSERT_EQ(answers.size(), 2u) << "the two waiters get the computing caller's error";
  EXPECT_EQ(answers[0].body, "error");
  EXPECT_EQ(w->puts, 0);
  // The key is free again: the next reader computes it anew.
  read("k");
  run();
  EXPECT_EQ(w->pool_jobs.size(), 2u);
}

TEST_F(CacheBroker, WaitersAreReleasedWhenTheComputingCallerVanishes) {
  auto cfg = local_off();
  cfg.flight_timeout = std::chrono::milliseconds(3000);
  start(cfg);
  read("k");
  read("k");
  run();
  ASSERT_EQ(w->pool_jobs.size(), 1u);
  EXPECT_TRUE(answers.empty());
  sched->advance_time(std::chrono::milliseconds(3000));
  run();
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_EQ(answers[0].body, "error");
  // A late answer from the computing caller is still stored and served.
  answer_pool("late");
  ASSERT_EQ(answers.size(), 2u);
  EXPECT_EQ(answers[1].body, "late");
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

TEST_F(CacheBroker, TheSharedNearCacheIsFilledUnderTheCallersKeySoHandlersCanReadItDirectly) {
  auto cfg = local_off();
  cfg.local_ttl = std::chrono::milliseconds(1000);
  cfg.near = std::make_shared<cache::near_cache>(cfg.local_ttl, 100);
  start(cfg);
  read("k");
  run();
  answer_pool("v1");
  auto now = sched->clock().now();
  auto body = cfg.near->find("k", now);
  ASSERT_TRUE(body.has_value()) << "keyed without the Redis prefix, as the HTTP side asks";
  EXPECT_EQ(*body, "v1");
  EXPECT_FALSE(cfg.near->find(cfg.key_prefix + "k", now).has_value());
  EXPECT_FALSE(cfg.near->find("k", now + std::chrono::milliseconds(1001)).has_value());
}

TEST(NearCache, ExpiresDisablesAndStaysBounded) {
  using namespace std::chrono_literals;
  cache::near_cache::time_point t0{};
  cache::near_cache off{0ms, 100};
  off.put("k", "v", t0);
  EXPECT_FALSE(off.find("k", t0).has_value());
  cache::near_cache c{1000ms, 64};
  c.put("k", "v", t0);
  EXPECT_EQ(c.find("k", t0 + 999ms).value_or(""), "v");
  EXPECT_FALSE(c.find("k", t0 + 1000ms).has_value());
  for (int i = 0; i < 10000; ++i)
    c.put("key" + std::to_string(i), "v", t0);
  EXPECT_LE(c.size(), 64u);
}

TEST(NearCache, ABytesBudgetBoundsMemoryWhateverTheEntryCount) {
  using namespace std::chrono_literals;
  cache::near_cache::time_point t0{};
  // 16 shards of 64 KiB: bodies of 10 KiB fit six to a shard at most.
  cache::near_cache c{1000ms, 1000000, true, 16 * 65536};
  const std::string body(10240, 'x');
  for (int i = 0; i < 5000; ++i)
    c.put("window:" + std::to_string(i), body, t0);
  EXPECT_LE(c.size(), 16u * 6u) << "held bytes stay under the budget";
  EXPECT_GT(c.size(), 0u);
  c.put("huge", std::string(70000, 'y'), t0);  // larger than a shard's whole budget
  EXPECT_FALSE(c.find("huge", t0).has_value());
  c.put("k", "v1", t0);
  c.put("k", "v2", t0);  // replacing an entry does not count its old body twice
  EXPECT_EQ(c.find("k", t0).value_or(""), "v2");
}

TEST(NearCache, ManyThreadsReadAndWriteTheSameKeys) {
  using namespace std::chrono_literals;
  cache::near_cache c{1000ms, 1000};
  cache::near_cache::time_point t0{};
  std::vector<std::thread> threads;
  std::atomic<long> wrong{0};
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&c, &wrong, t0, t] {
      for (int i = 0; i < 20000; ++i) {
        auto key = "k" + std::to_string(i % 50);
        if ((i + t) % 3 == 0)
          c.put(key, "body-" + key, t0);
        else if (auto b = c.find(key, t0); b && *b != "body-" + key)
          ++wrong;
      }
    });
  for (auto& th : threads)
    th.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(c.size(), 50u);
}
