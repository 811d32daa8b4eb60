// The DB pool under the deterministic scheduler: deadlines, queue bound, dispatch.
#include <gtest/gtest.h>

#include <set>

#include <caf/event_based_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "core/metrics.hpp"
#include "db/db_pool.hpp"
#include "tests/support/deterministic.hpp"

using namespace joule;
using namespace joule::test;

namespace {

struct worker_log {
  std::vector<std::pair<int, caf::response_promise>> running;  // worker, promise
  std::vector<caf::actor> workers;
};

// Test-only message: answer the job a worker holds.
using finish_atom = caf::atom_constant<caf::atom("finish")>;

caf::behavior mock_worker(caf::event_based_actor* self, int index,
                          std::shared_ptr<worker_log> log) {
  return {
      [self, index, log](db_job&) {
        log->running.emplace_back(index, self->make_response_promise());
        return log->running.back().second;
      },
      [index, log](finish_atom, std::size_t job, const std::string& body) {
        if (log->running[job].first == index)
          log->running[job].second.deliver(db_done{std::any(body)});
      },
  };
}

// What a caller got: a body, or the error's slug.
struct outcome {
  bool ok = false;
  std::string body;  // the job's value, or the failure slug
  errc code = errc::internal;
};

void asker(caf::event_based_actor* self, db_pool_actor pool, db_job job,
           std::shared_ptr<std::vector<outcome>> out) {
  self->request(pool, caf::infinite, std::move(job))
      .then([out](db_done& d) { out->push_back({true, std::any_cast<std::string>(d.value)}); },
            [out](caf::error& e) {
              auto f = failure_of(e);
              out->push_back({false, f.slug, f.code});
            });
}

struct DbPool : ::testing::Test, deterministic {
  std::shared_ptr<worker_log> log = std::make_shared<worker_log>();
  db_pool_actor pool;
  // Shared with the one-shot askers, which may still run while the fixture is torn down.
  std::shared_ptr<std::vector<outcome>> got = std::make_shared<std::vector<outcome>>();
  std::vector<outcome>& answers = *got;

  void start(int size, std::size_t queue_limit) {
    auto spawn_worker = [this](int i) {
      log->workers.push_back(keep(sys->spawn(mock_worker, i, log)));
      return caf::actor_cast<db_worker_actor>(log->workers.back());
    };
    db::db_pool_config cfg;
    cfg.size = size;
    cfg.queue_limit = queue_limit;
    pool = keep(sys->spawn(db::db_pool, cfg, spawn_worker));
    run();
  }

  void finish(std::size_t job, const std::string& body) {
    caf::anon_send(log->workers[static_cast<std::size_t>(log->running[job].first)],
                   finish_atom::value, job, body);
    run();
  }

  void submit(std::chrono::milliseconds timeout) {
    db_job job;
    job.timeout = timeout;
    keep(sys->spawn(asker, pool, job, got));
    run();
  }
};

TEST_F(DbPool, AQueuedJobIsAnsweredAtItsDeadline) {
  start(1, 10);
  submit(std::chrono::seconds(10));  // occupies the only worker
  submit(std::chrono::milliseconds(300));
  EXPECT_EQ(log->running.size(), 1u);
  EXPECT_TRUE(answers.empty());
  sched->advance_time(std::chrono::milliseconds(300));
  run();
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_FALSE(answers[0].ok);
  EXPECT_EQ(answers[0].code, errc::timeout);
  EXPECT_EQ(answers[0].body, "db_timeout");
  // When the worker frees up, the expired job is not run.
  finish(0, "ok");
  EXPECT_EQ(log->running.size(), 1u);
  ASSERT_EQ(answers.size(), 2u);
  EXPECT_TRUE(answers[1].ok);
  EXPECT_EQ(answers[1].body, "ok");
}

TEST_F(DbPool, ARunningJobIsAnsweredAtItsDeadlineAndItsWorkerStaysBusy) {
  start(1, 10);
  submit(std::chrono::milliseconds(500));
  sched->advance_time(std::chrono::milliseconds(500));
  run();
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_EQ(answers[0].code, errc::timeout);
  submit(std::chrono::seconds(5));
  EXPECT_EQ(log->running.size(), 1u) << "the worker is still running the first query";
  finish(0, "late");
  EXPECT_EQ(log->running.size(), 2u) << "then it takes the next job";
  ASSERT_EQ(answers.size(), 1u) << "the late answer is dropped";
}

TEST_F(DbPool, AFullQueueAnswers503AtOnce) {
  start(1, 2);
  for (int i = 0; i < 4; ++i)
    submit(std::chrono::seconds(5));  // 1 running + 2 queued + 1 rejected
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_EQ(answers[0].code, errc::overloaded);
  EXPECT_EQ(answers[0].body, "overloaded");
}

TEST_F(DbPool, JobsSpreadOverIdleWorkers) {
  start(3, 10);
  for (int i = 0; i < 3; ++i)
    submit(std::chrono::seconds(5));
  ASSERT_EQ(log->running.size(), 3u);
  std::set<int> used;
  for (auto& [w, rp] : log->running)
    used.insert(w);
  EXPECT_EQ(used.size(), 3u);
}

} // namespace

// --- read workers on a standby (db.read_url): routing and fallback

namespace {

// A worker that answers at once: its name, or (a reader told to) the failure in `fail_with`.
struct instant_log {
  std::vector<std::string> ran;  // "primary" / "standby", in order
  std::optional<failure> fail_with;
};

caf::behavior instant_worker(caf::event_based_actor*, std::string name,
                             std::shared_ptr<instant_log> log) {
  return {
      [name, log](db_job&) -> caf::result<db_done> {
        log->ran.push_back(name);
        if (name == "standby" && log->fail_with)
          return make_error(*log->fail_with);
        return db_done{std::any(name)};
      },
  };
}

struct DbPoolStandby : ::testing::Test, deterministic {
  std::shared_ptr<instant_log> log = std::make_shared<instant_log>();
  std::shared_ptr<db::replica_state> replica =
      std::make_shared<db::replica_state>(std::chrono::milliseconds{2000});
  db_pool_actor pool;
  std::shared_ptr<std::vector<outcome>> got = std::make_shared<std::vector<outcome>>();

  void SetUp() override {
    auto spawn = [this](std::string name) {
      return [this, name](int) {
        return caf::actor_cast<db_worker_actor>(keep(sys->spawn(instant_worker, name, log)));
      };
    };
    db::db_pool_config cfg;
    cfg.size = 1;
    cfg.read_size = 1;
    cfg.spawn_reader = spawn("standby");
    cfg.replica = replica;
    pool = keep(sys->spawn(db::db_pool, cfg, db::worker_factory(spawn("primary"))));
    run();
  }

  // A job; `read`: one the standby may serve.
  void submit(bool read) {
    db_job job;
    job.timeout = std::chrono::seconds(5);
    if (read)
      job.run_on_standby = [](db::session&) { return std::any{}; };
    keep(sys->spawn(asker, pool, job, got));
    run();
  }

  // A plain job (no standby variant) to another pool.
  void submit_to(db_pool_actor other) {
    db_job job;
    job.timeout = std::chrono::seconds(5);
    keep(sys->spawn(asker, other, job, got));
    run();
  }
};

} // namespace

TEST_F(DbPoolStandby, ReadsGoToTheStandbyOnlyWhileItIsUsable) {
  submit(true);  // no verdict yet: the primary
  replica->publish(true, 0.5);
  submit(true);
  submit(false);  // not a standby read: always the primary
  replica->publish(true, 2.5);  // lagging
  submit(true);
  replica->publish(true, 0.1);  // caught up again
  submit(true);
  replica->publish(false, std::numeric_limits<double>::infinity());
  submit(true);
  EXPECT_EQ(log->ran, (std::vector<std::string>{"primary", "standby", "primary", "primary",
                                                "standby", "primary"}));
  ASSERT_EQ(got->size(), 6u);
  for (auto& o : *got)
    EXPECT_TRUE(o.ok);
}

TEST_F(DbPoolStandby, AStandbyThatCannotAnswerHandsTheReadToThePrimary) {
  replica->publish(true, 0.5);
  log->fail_with = db::standby_behind("test");
  submit(true);
  log->fail_with = failure_of(make_error(errc::unavailable, "db_unavailable", "connection lost"));
  submit(true);
  EXPECT_EQ(log->ran, (std::vector<std::string>{"standby", "primary", "standby", "primary"}));
  ASSERT_EQ(got->size(), 2u);
  for (auto& o : *got) {
    EXPECT_TRUE(o.ok);
    EXPECT_EQ(o.body, "primary");
  }
}

TEST_F(DbPoolStandby, ADomainAnswerFromTheStandbyIsFinal) {
  replica->publish(true, 0.5);
  log->fail_with = failure_of(make_error(errc::invalid, "bad_thing", "no"));
  submit(true);
  EXPECT_EQ(log->ran, (std::vector<std::string>{"standby"}));
  ASSERT_EQ(got->size(), 1u);
  EXPECT_FALSE((*got)[0].ok);
  EXPECT_EQ((*got)[0].body, "bad_thing");
}

namespace {

std::uint64_t reads(const char* target) {
  return metrics::global()
      .get_counter("joule_db_reads_total",
                   "Analytics reads answered, by the server that served them",
                   metrics::label("target", target))
      .value();
}

} // namespace

// joule_db_reads_total{target="primary"} counts every analytics read the primary answered,
// also on a server without db.read_url (no read workers, no standby variant).
TEST_F(DbPoolStandby, AnalyticsReadsAreCountedWithoutAStandby) {
  db::db_pool_config cfg;
  cfg.size = 1;
  auto primary = [this](int) {
    return caf::actor_cast<db_worker_actor>(keep(sys->spawn(instant_worker, "primary", log)));
  };
  auto plain = keep(sys->spawn(db::db_pool, cfg, db::worker_factory(primary)));
  run();
  auto before_primary = reads("primary");
  auto before_standby = reads("standby");
  // `plain` goes in as a spawn argument: CAF 0.17 binds a null tuple for a functor spawned
  // without arguments (UBSan: reference binding to null pointer).
  using pool_handle = decltype(plain);
  keep(sys->spawn(
      [](caf::event_based_actor* self, pool_handle pool) {
        self->request(pool, caf::infinite, series_query{}).then([](series_result&) {},
                                                                [](caf::error&) {});
        self->request(pool, caf::infinite, top_query{}).then([](top_result&) {},
                                                             [](caf::error&) {});
      },
      plain));
  run();
  submit_to(plain);  // a plain job (not a read): not counted
  EXPECT_EQ(log->ran, (std::vector<std::string>{"primary", "primary", "primary"}));
  EXPECT_EQ(reads("primary") - before_primary, 2u);
  EXPECT_EQ(reads("standby"), before_standby);
}

// Jobs that timed out while queued stay in the deque until they reach its front; with the
// only worker stuck they must not fill db.queue_limit (every later job answered 503).
TEST_F(DbPool, QueuedJobsThatTimedOutFreeTheirPlaceInTheQueue) {
  start(1, 2);
  submit(std::chrono::seconds(60));  // the worker hangs on this one
  submit(std::chrono::milliseconds(300));
  submit(std::chrono::milliseconds(300));
  sched->advance_time(std::chrono::milliseconds(300));
  run();
  ASSERT_EQ(answers.size(), 2u);
  EXPECT_EQ(answers[0].code, errc::timeout);
  EXPECT_EQ(answers[1].code, errc::timeout);
  submit(std::chrono::seconds(5));
  submit(std::chrono::seconds(5));
  EXPECT_EQ(answers.size(), 2u) << "both queued, none rejected";
  submit(std::chrono::seconds(5));
  ASSERT_EQ(answers.size(), 3u);
  EXPECT_EQ(answers[2].code, errc::overloaded) << "the limit still holds";
  finish(0, "late");
  EXPECT_EQ(log->running.size(), 2u) << "the expired ones are skipped, a live one runs";
}
