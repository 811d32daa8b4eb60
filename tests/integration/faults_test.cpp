// Faults while serving: Redis stopped and restarted, backends killed, PostgreSQL unreachable
// and back, a slow query, a deadline shorter than the query.
#include <gtest/gtest.h>

#include <cmath>
#include <thread>

#include <caf/scoped_actor.hpp>

#include "core/interfaces.hpp"
#include "core/registry.hpp"
#include "core/timefmt.hpp"
#include "db/session.hpp"
#include "tests/support/api_fixture.hpp"
#include "tests/support/tcp_proxy.hpp"

#include <pqxx/pqxx>

using namespace joule;
using namespace joule::test;

namespace {

std::string energy_target(int h, int salt) {
  // A distinct start per salt: a fresh computation rather than a cached answer.
  static const auto base = floor_to(now_micros(), 60 * micros_per_second) - 6 * 3600 * micros_per_second;
  return "/analytics/households/" + household_id(h) + "/energy?step=1h&start=" +
         format_rfc3339(base - salt * 60 * micros_per_second);
}

// The same series up to floating-point summation order (rollup vs raw paths add differently).
void expect_same_series(const std::string& a, const std::string& b) {
  auto da = parse_json(a), db = parse_json(b);
  ASSERT_TRUE(da.HasMember("series") && db.HasMember("series")) << a << "\n" << b;
  ASSERT_EQ(da["series"].Size(), db["series"].Size());
  for (rapidjson::SizeType i = 0; i < da["series"].Size(); ++i) {
    EXPECT_STREQ(da["series"][i]["t"].GetString(), db["series"][i]["t"].GetString());
    auto va = da["series"][i]["v"].GetDouble(), vb = db["series"][i]["v"].GetDouble();
    EXPECT_NEAR(va, vb, 1e-9 * (1 + std::fabs(va)));
  }
}

class Faults : public ::testing::Test {
protected:
  static void SetUpTestSuite() {
    db_ = new pg_test_db("joule_test_faults");
    seed_fleet(*db_, 2, 3, 3, 60);
  }
  static void TearDownTestSuite() { delete db_; }
  static pg_test_db* db_;
};
pg_test_db* Faults::db_ = nullptr;

TEST_F(Faults, RedisDownMeansBypassWithCorrectAnswersThenTheCacheIsUsedAgain) {
  redis_process redis;
  redis.start();
  auto s = test_settings(db_->url(), redis.url());
  s.cache_breaker_open = std::chrono::milliseconds(300);
  s.cache_local_ttl = std::chrono::milliseconds(0);  // Redis itself is under test
  s.live_enabled = false;  // the answer cache, not live reads (tests/http/live_test.cpp)
  s.redis_timeout = std::chrono::milliseconds(50);
  app server{s};
  server.start();
  auto target = energy_target(1, 1);
  auto first = http_get(server.port(), target);
  ASSERT_EQ(first.status, 200);
  EXPECT_EQ(first.headers["x-cache"], "miss");
  // The answer is stored after it is sent: the next request hits once the SET has landed.
  bool cached = false;
  for (int i = 0; i < 50 && !cached; ++i)
    cached = http_get(server.port(), target).headers["x-cache"] == "hit";
  ASSERT_TRUE(cached);

  redis.stop();
  for (int i = 0; i < 10; ++i) {
    auto r = http_get(server.port(), target);
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.headers["x-cache"], "bypass");
    expect_same_series(r.body, first.body);
    EXPECT_LT(r.seconds, 1.0) << "a dead Redis must not stall reads";
  }
  redis.start();
  // The breaker probes Redis by itself and closes; the key is then cached again.
  bool hit = false;
  for (int i = 0; i < 100 && !hit; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    hit = http_get(server.port(), target).headers["x-cache"] == "hit";
  }
  EXPECT_TRUE(hit) << "cache never used again after Redis came back";
  auto m = http_get(server.port(), "/metrics").body;
  EXPECT_NE(m.find("joule_cache_requests_total{outcome=\"bypass\"} 1"), std::string::npos) << m;
}

TEST_F(Faults, KilledBackendsAreReplacedAndNoRequestWaitsPastItsDeadline) {
  auto s = test_settings(db_->url(), "");
  s.db_request_deadline = std::chrono::milliseconds(2000);
  app server{s};
  server.start();
  for (int i = 0; i < 6; ++i)
    ASSERT_EQ(http_get(server.port(), energy_target(1, i)).status, 200);
  // The refresh actors catch up one at a time (refresh.catchup_parallel = 1), each worker
  // connecting for its first cycle: wait until all three have (a pool connection + 3).
  for (int i = 0; i < 200; ++i) {
    if (std::stoi(db_->scalar("SELECT count(*) FROM pg_stat_activity WHERE datname = "
                              "current_database() AND application_name = 'joule'")) >= 4)
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  auto killed = db_->scalar("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE "
                            "datname = current_database() AND pid <> pg_backend_pid() AND "
                            "application_name = 'joule'");
  ASSERT_GE(std::stoi(killed), 3) << "pool and refresh connections";
  for (int i = 0; i < 12; ++i) {
    auto r = http_get(server.port(), energy_target(2, 10 + i));
    EXPECT_EQ(r.status, 200) << r.body;
    EXPECT_LT(r.seconds, 2.5) << "deadline 2 s";
  }
  auto m = http_get(server.port(), "/metrics").body;
  EXPECT_NE(m.find("joule_db_reconnects_total{worker=\"pool\"}"), std::string::npos) << m;
}

TEST_F(Faults, DatabaseUnreachableGives503WithRetryAfterAndServiceResumes) {
  auto pg_port = static_cast<std::uint16_t>(std::stoi(std::getenv("JOULE_TEST_PGPORT")));
  tcp_proxy proxy{pg_port};
  auto url = db_->url();
  url.replace(url.find("port="), url.find(' ', url.find("port=")) - url.find("port="),
              "port=" + std::to_string(proxy.port()));
  auto s = test_settings(url, "");
  s.db_reconnect_backoff_max = std::chrono::milliseconds(300);
  app server{s};
  server.start();
  ASSERT_EQ(http_get(server.port(), energy_target(1, 30)).status, 200);
  proxy.cut();
  for (int i = 0; i < 5; ++i) {
    auto r = http_get(server.port(), energy_target(1, 31 + i));
    EXPECT_EQ(r.status, 503) << r.body;
    EXPECT_EQ(r.headers["retry-after"], "1");
    EXPECT_NE(r.body.find("\"code\":\"db_unavailable\""), std::string::npos) << r.body;
    EXPECT_EQ(r.body.find("pqxx"), std::string::npos) << "no internals in errors";
    EXPECT_LT(r.seconds, 3.5);
  }
  EXPECT_EQ(http_get(server.port(), "/readyz").status, 503);
  proxy.restore();
  bool back = false;
  for (int i = 0; i < 100 && !back; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    back = http_get(server.port(), energy_target(1, 40 + i % 20)).status == 200;
  }
  EXPECT_TRUE(back) << "service did not resume after the database returned";
  EXPECT_EQ(http_get(server.port(), "/readyz").status, 200);
}

db_job sleep_job(double seconds, std::chrono::milliseconds timeout) {
  db_job job;
  job.label = "sleep";
  job.timeout = timeout;
  job.run = [seconds](db::session& s) {
    pqxx::nontransaction q{s.conn()};
    q.exec("SELECT pg_sleep(" + std::to_string(seconds) + ")");
    return std::any(std::string("slept"));
  };
  return job;
}

TEST_F(Faults, ASlowQueryOccupiesOneWorkerNotTheServer) {
  auto s = test_settings(db_->url(), "");
  s.db_pool_size = 3;
  s.db_request_deadline = std::chrono::milliseconds(5000);
  s.db_statement_timeout = std::chrono::milliseconds(10000);
  app server{s};
  server.start();
  auto pool = server.registry()->get<db_pool_actor>();
  caf::anon_send(pool, sleep_job(3.0, std::chrono::milliseconds(5000)));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  double worst = 0;
  for (int i = 0; i < 20; ++i) {
    auto r = http_get(server.port(), energy_target(1 + i % 2, i));
    EXPECT_EQ(r.status, 200) << r.body;
    worst = std::max(worst, r.seconds);
  }
  EXPECT_LT(worst, 1.0) << "requests waited behind the 3 s query";
}

TEST_F(Faults, AJobIsAnsweredAtItsDeadlineEvenIfTheQueryRunsOn) {
  auto s = test_settings(db_->url(), "");
  s.db_statement_timeout = std::chrono::milliseconds(10000);
  app server{s};
  server.start();
  auto pool = server.registry()->get<db_pool_actor>();
  caf::scoped_actor self{server.system()};
  auto t0 = std::chrono::steady_clock::now();
  std::optional<failure> answer;
  self->request(pool, std::chrono::seconds(10), sleep_job(2.0, std::chrono::milliseconds(300)))
      .receive([&](db_done&) {}, [&](caf::error& e) { answer = failure_of(e); });
  auto waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_TRUE(answer) << "the job must not succeed";
  EXPECT_EQ(answer->code, errc::timeout);
  EXPECT_EQ(answer->slug, "db_timeout");
  EXPECT_LT(waited, 1.0);
  EXPECT_GE(waited, 0.29);
}

} // namespace
