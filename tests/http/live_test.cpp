// Live reads (issue 9) over real HTTP with a real PostgreSQL: household energy answers joined
// from settled parts (memory, keyed by version) and the in-memory live tail equal brute force
// over raw rows in every state — new readings, late inserts/updates/deletes pending and
// refreshed, a second instance sharing the database, Redis unreachable, PostgreSQL cut off and
// back — with fresh_as_of never ahead of the data and no database query per poll.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <map>
#include <thread>

#include <pqxx/pqxx>

#include "core/timefmt.hpp"
#include "db/rollups.hpp"
#include "db/session.hpp"
#include "tests/support/api_fixture.hpp"
#include "tests/support/tcp_proxy.hpp"

using namespace joule;
using namespace joule::test;

namespace {

constexpr std::int64_t minute = 60 * micros_per_second;
constexpr std::int64_t hour = 60 * minute;

std::string iso(std::int64_t t) { return format_rfc3339(t); }

struct answer {
  int status = 0;
  std::string x_cache;
  std::int64_t start = 0, end = 0, fresh = 0;
  std::map<std::int64_t, double> series;
  std::string body;
};

answer energy(std::uint16_t port, int h, const std::string& step, const std::string& extra = "") {
  auto r = http_get(port, "/analytics/households/" + household_id(h) + "/energy?step=" + step + extra);
  answer a;
  a.status = r.status;
  a.body = r.body;
  a.x_cache = r.headers.count("x-cache") ? r.headers.at("x-cache") : "";
  if (r.status != 200)
    return a;
  auto d = parse_json(r.body);
  a.start = *parse_rfc3339(d["start"].GetString());
  a.end = *parse_rfc3339(d["end"].GetString());
  a.fresh = *parse_rfc3339(d["fresh_as_of"].GetString());
  for (auto& p : d["series"].GetArray())
    a.series[*parse_rfc3339(p["t"].GetString())] = p["v"].GetDouble();
  return a;
}

class Live : public ::testing::Test {
protected:
  static void SetUpTestSuite() {
    db_ = new pg_test_db("joule_test_live");
    seed_fleet(*db_, 3, 4, 26, 60);
    app_ = new app(settings(db_->url()));
    app_->start();
    wait_caught_up();
    wait_live(app_->port());
  }
  static void TearDownTestSuite() {
    delete app_;
    delete db_;
  }

  static config::settings settings(const std::string& url, const std::string& redis = "") {
    auto s = test_settings(url, redis);
    s.live_interval = std::chrono::milliseconds(200);
    return s;
  }
  static void wait_caught_up() {
    for (int i = 0; i < 600; ++i) {
      if (db_->scalar("SELECT count(*) FROM rollup_state WHERE watermark >= now() - "
                      "(CASE name WHEN 'device_1h' THEN interval '1 hour' WHEN 'household_5m' "
                      "THEN interval '5 minutes' ELSE interval '1 minute' END) - 2 * bucket_width") == "3")
        return;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  // Until the live tail has published a snapshot with the households' buckets.
  static void wait_live(std::uint16_t port) {
    for (int i = 0; i < 200; ++i) {
      if (live_published(port))
        return;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    FAIL() << "live tail never published";
  }
  static std::int64_t db_now() {
    return std::stoll(db_->scalar("SELECT (extract(epoch from clock_timestamp()) * 1e6)::bigint"));
  }

  // Brute force over raw rows for the answer's window.
  static std::map<std::int64_t, double> brute(int h, std::int64_t step, std::int64_t start,
                                              std::int64_t end) {
    std::map<std::int64_t, double> out;
    pqxx::connection c{db_->url()};
    pqxx::nontransaction q{c};
    for (auto row : q.exec("SELECT (extract(epoch from date_bin('" + std::to_string(step / micros_per_second) +
                           " seconds', ts, '2000-01-01 00:00:00+00')) * 1e6)::bigint, "
                           "coalesce(sum(energy_wh), 0) FROM telemetry WHERE household_id = '" +
                           household_id(h) + "' AND ts >= '" + iso(start) + "' AND ts < '" +
                           iso(end) + "' GROUP BY 1"))
      out[row[0].as<std::int64_t>()] = row[1].as<double>();
    return out;
  }
  static bool same(const std::map<std::int64_t, double>& a, const std::map<std::int64_t, double>& b) {
    if (a.size() != b.size())
      return false;
    for (auto& [t, v] : a) {
      auto it = b.find(t);
      if (it == b.end() || std::fabs(it->second - v) > 1e-6 * (1 + std::fabs(v)))
        return false;
    }
    return true;
  }
  static bool matches_brute(const answer& a, int h, std::int64_t step) {
    return a.status == 200 && same(a.series, brute(h, step, a.start, a.end));
  }

  // Re-materialises [lo, hi) of the two rollups the energy answer reads (as the refresh
  // actors would on their schedule; done by hand so the test decides when).
  static void refresh(std::int64_t lo, std::int64_t hi) {
    db::session s{db_->url()};
    for (auto* name : {"household_5m", "device_1m"}) {
      auto* spec = db::find_rollup(name);
      db::refresh_range(s, *spec, {48 * hour, spec->width, 6 * hour}, floor_to(lo, spec->width),
                        ceil_to(hi, spec->width));
    }
  }

  static pg_test_db* db_;
  static app* app_;
};

pg_test_db* Live::db_ = nullptr;
app* Live::app_ = nullptr;

TEST_F(Live, EnergyEqualsBruteForceAndPollsNeedNoDatabaseQuery) {
  auto port = app_->port();
  for (int h = 1; h <= 3; ++h)
    for (std::string step : {"5m", "1h"}) {
      auto width = step == "5m" ? 5 * minute : hour;
      auto a = energy(port, h, step);
      ASSERT_EQ(a.status, 200) << a.body;
      EXPECT_EQ(a.end - a.start, 24 * hour);
      EXPECT_TRUE(matches_brute(a, h, width)) << a.body;
      EXPECT_LE(a.fresh, db_now());
      EXPECT_GE(a.fresh, db_now() - 5 * micros_per_second) << "the snapshot is at most ~1 s old";
    }
  // Steady state: every poll is joined from memory.
  auto before = metric(port, "joule_db_queries_total{source=\"pool\"}");
  int polls = 0, hits = 0;
  for (int i = 0; i < 20; ++i)
    for (int h = 1; h <= 3; ++h, ++polls) {
      auto a = energy(port, h, "5m");
      ASSERT_EQ(a.status, 200);
      hits += a.x_cache == "hit";
    }
  auto queries = metric(port, "joule_db_queries_total{source=\"pool\"}") - before;
  // A default window crossing a 5-minute boundary mid-test costs one query per household.
  EXPECT_LE(queries, 3) << "queries per poll " << queries / polls;
  EXPECT_GE(hits, polls - 3);
}

TEST_F(Live, ANewReadingIsVisibleWithinTwoSecondsAndFreshAsOfNeverLeadsIt) {
  auto port = app_->port();
  const auto full_reads = metric(port, "joule_live_tail_full_reads_total");
  const auto raw_rows = metric(port, "joule_live_tail_raw_rows_total");
  db_->exec("INSERT INTO telemetry VALUES (now(), '" + device_id(1) + "', '" + household_id(1) +
            "', 10, 4321.5)");
  auto committed = db_now();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  bool seen = false;
  while (!seen && std::chrono::steady_clock::now() < deadline) {
    auto a = energy(port, 1, "5m");
    ASSERT_EQ(a.status, 200);
    auto b = brute(1, 5 * minute, a.start, a.end);
    if (a.fresh >= committed) {
      // Claims the reading: must reflect it.
      ASSERT_TRUE(same(a.series, b)) << a.body;
      seen = true;
    }
  }
  EXPECT_TRUE(seen) << "a committed reading must be visible within 2 s";
  // The tail folded that one statement's row (no refresh ran: no whole re-read of the tail).
  EXPECT_EQ(metric(port, "joule_live_tail_full_reads_total"), full_reads);
  EXPECT_GE(metric(port, "joule_live_tail_raw_rows_total") - raw_rows, 1);
  EXPECT_LE(metric(port, "joule_live_tail_raw_rows_total") - raw_rows, 2);
}

TEST_F(Live, LateInsertsUpdatesAndDeletesArePendingThenRefreshedAndAlwaysTruthful) {
  auto port = app_->port();
  auto now = db_now();
  struct change {
    const char* what;
    std::string sql;
    std::int64_t lo, hi;
  };
  auto t0 = floor_to(now - 3 * hour, 5 * minute);
  auto t1 = floor_to(now - 5 * hour, 5 * minute);
  auto t2 = floor_to(now - 7 * hour, 5 * minute);
  // The latest midnight more than 30 minutes ago that the fixture's 26 h of data still covers.
  auto midnight = floor_to(now - 30 * minute, 24 * hour);
  std::vector<change> changes = {
      {"insert", "INSERT INTO telemetry VALUES ('" + iso(t0 + 7 * micros_per_second) + "', '" +
                     device_id(2) + "', '" + household_id(1) + "', 5, 777.25)",
       t0, t0 + minute},
      {"update", "UPDATE telemetry SET energy_wh = energy_wh + 100 WHERE household_id = '" +
                     household_id(1) + "' AND ts >= '" + iso(t1) + "' AND ts < '" + iso(t1 + 5 * minute) + "'",
       t1, t1 + 5 * minute},
      {"delete", "DELETE FROM telemetry WHERE household_id = '" + household_id(1) + "' AND ts >= '" +
                     iso(t2) + "' AND ts < '" + iso(t2 + 5 * minute) + "'",
       t2, t2 + 5 * minute},
      {"cross-midnight update",
       "UPDATE telemetry SET ts = ts + interval '2 minutes' WHERE household_id = '" + household_id(1) +
           "' AND ts >= '" + iso(midnight - minute) + "' AND ts < '" + iso(midnight) + "'",
       midnight - minute, midnight + 2 * minute},
  };
  for (auto& c : changes) {
    SCOPED_TRACE(c.what);
    // Cache the settled part first, so the change has something to be stale against.
    ASSERT_TRUE(matches_brute(energy(port, 1, "5m"), 1, 5 * minute));
    ASSERT_TRUE(matches_brute(energy(port, 1, "1h"), 1, hour));
    db_->exec(c.sql);
    auto committed = db_now();
    // Until the refresh lands: whatever is answered must not claim the change unless it
    // shows it.
    for (int i = 0; i < 8; ++i) {
      for (std::string step : {"5m", "1h"}) {
        auto width = step == "5m" ? 5 * minute : hour;
        auto a = energy(port, 1, step);
        ASSERT_EQ(a.status, 200);
        if (a.fresh >= committed) {
          EXPECT_TRUE(matches_brute(a, 1, width)) << "claims the change without showing it: " << a.body;
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    refresh(c.lo - 5 * minute, c.hi + 5 * minute);
    auto refreshed = db_now();
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
    bool ok = false;
    while (!ok && std::chrono::steady_clock::now() < deadline) {
      auto a5 = energy(port, 1, "5m"), a1 = energy(port, 1, "1h");
      ok = a5.fresh >= refreshed && a1.fresh >= refreshed && matches_brute(a5, 1, 5 * minute) &&
           matches_brute(a1, 1, hour);
    }
    EXPECT_TRUE(ok) << "the refreshed change must be answered within 3 s";
  }
}

TEST_F(Live, ARefreshOnOneInstanceEvictsOnTheOther) {
  app other{settings(db_->url())};
  other.start();
  wait_live(other.port());
  for (auto port : {app_->port(), other.port()})
    ASSERT_TRUE(matches_brute(energy(port, 2, "5m"), 2, 5 * minute));
  auto t = floor_to(db_now() - 4 * hour, 5 * minute);
  db_->exec("INSERT INTO telemetry VALUES ('" + iso(t + 1) + "', '" + device_id(5) + "', '" +
            household_id(2) + "', 1, 999.75)");
  // The refresh runs on neither: announced through NOTIFY to both.
  refresh(t, t + 5 * minute);
  auto refreshed = db_now();
  auto status_before = http_get(other.port(), "/admin/status").body;
  for (auto port : {app_->port(), other.port()}) {
    bool ok = false;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
    while (!ok && std::chrono::steady_clock::now() < deadline) {
      auto a = energy(port, 2, "5m");
      ok = a.fresh >= refreshed && matches_brute(a, 2, 5 * minute);
    }
    EXPECT_TRUE(ok) << "port " << port;
  }
  auto st = parse_json(http_get(other.port(), "/admin/status").body);
  ASSERT_TRUE(st.HasMember("change_listener")) << status_before;
  EXPECT_GE(st["change_listener"]["notifications"].GetInt64(), 1)
      << "the other instance heard the refresh";
}

TEST_F(Live, SettledPartsAreSharedThroughRedisUnderVersionedKeys) {
  redis_process redis;
  redis.start();
  app a{settings(db_->url(), redis.url())}, b{settings(db_->url(), redis.url())};
  a.start();
  b.start();
  wait_live(a.port());
  wait_live(b.port());
  // An explicit window of its own: no other test computed its settled part.
  auto now = db_now();
  auto extra = "&start=" + iso(floor_to(now, hour) - 20 * hour - 5 * minute);
  auto first = energy(a.port(), 3, "5m", extra);
  ASSERT_EQ(first.status, 200) << first.body;
  EXPECT_EQ(first.x_cache, "miss");
  EXPECT_TRUE(matches_brute(first, 3, 5 * minute));
  // The other instance finds the part in Redis once the SET landed: no query of its own.
  bool shared = false;
  for (int i = 0; i < 50 && !shared; ++i) {
    auto r = energy(b.port(), 3, "5m", extra);
    ASSERT_EQ(r.status, 200);
    EXPECT_TRUE(matches_brute(r, 3, 5 * minute));
    shared = r.x_cache == "hit";
    if (!shared)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(shared) << "the settled part was not shared through Redis";
  // A rewrite of an hour it spans changes its key: both compute the new rows.
  auto t = floor_to(now - 10 * hour, 5 * minute);
  db_->exec("INSERT INTO telemetry VALUES ('" + iso(t + 2) + "', '" + device_id(10) + "', '" +
            household_id(3) + "', 1, 321.125)");
  refresh(t, t + 5 * minute);
  auto refreshed = db_now();
  for (auto port : {a.port(), b.port()}) {
    bool ok = false;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
    while (!ok && std::chrono::steady_clock::now() < deadline) {
      auto r = energy(port, 3, "5m", extra);
      ok = r.fresh >= refreshed && matches_brute(r, 3, 5 * minute);
    }
    EXPECT_TRUE(ok) << "port " << port;
  }
}

// A settled part damaged in Redis (truncated, overwritten by something else) is a miss: read
// again from PostgreSQL and written back, never copied into an answer.
TEST_F(Live, ADamagedSettledPartInRedisIsReadAgainNotServed) {
  redis_process redis;
  redis.start();
  const auto port = std::to_string(redis.port());
  const auto pattern = "'*s:household_5m:" + household_id(1) + ":*'";
  app a{settings(db_->url(), redis.url())};
  a.start();
  wait_live(a.port());
  auto extra = "&start=" + iso(floor_to(db_now(), hour) - 21 * hour - 5 * minute);
  ASSERT_TRUE(matches_brute(energy(a.port(), 1, "5m", extra), 1, 5 * minute));
  // The SET follows the answer: wait for it, then damage every part of the household.
  bool stored = false;
  for (int i = 0; i < 100 && !stored; ++i) {
    stored = std::system(("test -n \"$(redis-cli -p " + port + " --scan --pattern " + pattern +
                          ")\"").c_str()) == 0;
    if (!stored)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_TRUE(stored) << "the settled part never reached Redis";
  ASSERT_EQ(std::system(("redis-cli -p " + port + " --scan --pattern " + pattern +
                         " | xargs -r -I{} redis-cli -p " + port +
                         " set {} '{\"t\":\"broken' >/dev/null").c_str()),
            0);
  app b{settings(db_->url(), redis.url())};
  b.start();
  wait_live(b.port());
  auto r = energy(b.port(), 1, "5m", extra);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(matches_brute(r, 1, 5 * minute)) << r.body;
  EXPECT_EQ(r.body.find("broken"), std::string::npos) << r.body;
}

TEST_F(Live, RedisUnreachableChangesNothing) {
  app server{settings(db_->url(), "redis://127.0.0.1:1")};
  server.start();
  wait_live(server.port());
  for (int h = 1; h <= 3; ++h) {
    auto a = energy(server.port(), h, "5m");
    ASSERT_EQ(a.status, 200) << a.body;
    EXPECT_TRUE(matches_brute(a, h, 5 * minute));
  }
}

TEST_F(Live, DatabaseCutOffAnswersCorrectlyOr503AndTheTailRebuilds) {
  auto pg_port = static_cast<std::uint16_t>(std::stoi(std::getenv("JOULE_TEST_PGPORT")));
  tcp_proxy proxy{pg_port};
  auto url = db_->url();
  url.replace(url.find("port="), url.find(' ', url.find("port=")) - url.find("port="),
              "port=" + std::to_string(proxy.port()));
  auto s = settings(url);
  s.db_reconnect_backoff_max = std::chrono::milliseconds(300);
  app server{s};
  server.start();
  wait_live(server.port());
  ASSERT_TRUE(matches_brute(energy(server.port(), 3, "5m"), 3, 5 * minute));
  proxy.cut();
  // Written while the server cannot see the database.
  db_->exec("INSERT INTO telemetry VALUES (now(), '" + device_id(9) + "', '" + household_id(3) +
            "', 1, 55.5)");
  auto committed = db_now();
  int ok = 0, unavailable = 0;
  for (int i = 0; i < 50; ++i) {
    auto a = energy(server.port(), 3, "5m");
    if (a.status == 200) {
      ++ok;
      EXPECT_LT(a.fresh, committed) << "claims a write it cannot have seen";
    } else {
      EXPECT_EQ(a.status, 503) << a.body;
      ++unavailable;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
  }
  EXPECT_GT(unavailable, 0) << "a tail that stopped must not be served for long";
  proxy.restore();
  bool back = false;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!back && std::chrono::steady_clock::now() < deadline) {
    auto a = energy(server.port(), 3, "5m");
    back = a.status == 200 && a.fresh >= committed && matches_brute(a, 3, 5 * minute);
    if (!back)
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(back) << "the live tail did not rebuild after the database returned";
}

} // namespace
