// The analytics API over real HTTP, with a real PostgreSQL and Redis: shapes, ordering,
// bucket bounds, values against brute force, every 4xx, cache hits, truthful fresh_as_of.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <thread>

#include <pqxx/pqxx>

#include "core/metrics.hpp"
#include "core/timefmt.hpp"
#include "db/rollups.hpp"
#include "db/session.hpp"
#include "tests/support/api_fixture.hpp"
#include "tests/support/raw_http.hpp"

using namespace joule;
using namespace joule::test;

namespace {

constexpr std::int64_t minute = 60 * micros_per_second;

class Api : public ::testing::Test {
protected:
  static void SetUpTestSuite() {
    db_ = new pg_test_db("joule_test_api");
    redis_ = new redis_process();
    redis_->start();
    seed_fleet(*db_, 3, 4, 26, 60);
    app_ = new app(test_settings(db_->url(), redis_->url()));
    app_->start();
    // The first refresh cycles run at start and catch up on the history in batches; wait
    // until every watermark is within two buckets of its end_offset.
    for (int i = 0; i < 600; ++i) {
      if (db_->scalar("SELECT count(*) FROM rollup_state WHERE watermark >= now() - "
                      "(CASE name WHEN 'device_1h' THEN interval '1 hour' WHEN 'household_5m' "
                      "THEN interval '5 minutes' ELSE interval '1 minute' END) - 2 * bucket_width") == "3")
        break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  static void TearDownTestSuite() {
    delete app_;
    delete redis_;
    delete db_;
  }
  static std::uint16_t port() { return app_->port(); }

  // Brute force over raw rows: bucket -> value.
  static std::map<std::string, double> brute(const std::string& sql) {
    std::map<std::string, double> out;
    pqxx::connection c{db_->url() + " options='-c TimeZone=UTC'"};
    pqxx::nontransaction q{c};
    for (auto row : q.exec(sql))
      out[row[0].as<std::string>()] = row[1].is_null() ? NAN : row[1].as<double>();
    return out;
  }

  static pg_test_db* db_;
  static redis_process* redis_;
  static app* app_;
};

pg_test_db* Api::db_ = nullptr;
redis_process* Api::redis_ = nullptr;
app* Api::app_ = nullptr;

std::string iso(std::int64_t t) { return format_rfc3339(t); }

void expect_error(const http_result& r, int status, const std::string& code) {
  EXPECT_EQ(r.status, status) << r.body;
  auto d = parse_json(r.body);
  ASSERT_TRUE(d.IsObject() && d.HasMember("error")) << r.body;
  EXPECT_EQ(std::string(d["error"]["code"].GetString()), code) << r.body;
  EXPECT_TRUE(d["error"]["message"].IsString());
  EXPECT_EQ(r.headers.count("content-type") ? r.headers.at("content-type") : "",
            "application/json");
}

TEST_F(Api, EnergyMatchesBruteForceWithBucketBoundsAndOrder) {
  for (std::string step : {"5m", "1h"}) {
    auto hid = household_id(2);
    auto r = http_get(port(), "/analytics/households/" + hid + "/energy?step=" + step);
    ASSERT_EQ(r.status, 200) << r.body;
    auto d = parse_json(r.body);
    for (auto* k : {"household_id", "step", "start", "end", "fresh_as_of", "series"})
      ASSERT_TRUE(d.HasMember(k)) << k << " missing: " << r.body;
    EXPECT_EQ(std::string(d["household_id"].GetString()), hid);
    EXPECT_EQ(std::string(d["step"].GetString()), step);
    auto start = *parse_rfc3339(d["start"].GetString());
    auto end = *parse_rfc3339(d["end"].GetString());
    EXPECT_EQ(end - start, 24 * 60 * minute);
    auto width = step == "5m" ? 5 * minute : 60 * minute;
    auto expected = brute("SELECT to_char(date_bin('" + std::string(step == "5m" ? "5 minutes" : "1 hour") +
                          "', ts, '2000-01-01 00:00:00+00'), 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
                          "sum(energy_wh) FROM telemetry WHERE household_id = '" + hid +
                          "' AND ts >= '" + iso(start) + "' AND ts < '" + iso(end) +
                          "' GROUP BY 1");
    auto& series = d["series"];
    ASSERT_TRUE(series.IsArray());
    ASSERT_EQ(series.Size(), expected.size());
    std::int64_t prev = INT64_MIN;
    for (auto& p : series.GetArray()) {
      auto t = *parse_rfc3339(p["t"].GetString());
      EXPECT_GT(t, prev) << "ascending";
      prev = t;
      EXPECT_GE(t, start);
      EXPECT_LT(t, end);
      EXPECT_EQ(t % width, 0) << "aligned to the step";
      auto it = expected.find(p["t"].GetString());
      ASSERT_NE(it, expected.end()) << p["t"].GetString();
      EXPECT_NEAR(p["v"].GetDouble(), it->second, 1e-6 * (1 + std::fabs(it->second)));
    }
  }
}

TEST_F(Api, UnalignedBoundsAreAlignedEchoedWholeAndShareTheAlignedKey) {
  auto now = now_micros();
  struct request {
    bool power;
    std::string step;
    std::int64_t width;
    std::string sql_width;
  };
  for (auto& rq : {request{false, "5m", 5 * minute, "5 minutes"},
                   request{false, "1h", 60 * minute, "1 hour"},
                   request{true, "1m", minute, "1 minute"},
                   request{true, "5m", 5 * minute, "5 minutes"},
                   request{true, "1h", 60 * minute, "1 hour"}}) {
    // Off every grid, and reaching from the rollups over their watermarks into the raw tail.
    auto start = floor_to(now - 3 * 60 * minute, 60 * minute) + 3 * minute + 7 * 1000 * 1000;
    auto end = now - 2 * minute - 13 * 1000 * 1000 - 1;
    auto al_start = floor_to(start, rq.width), al_end = ceil_to(end, rq.width);
    auto base = rq.power ? "/analytics/devices/" + device_id(7) + "/power?step="
                         : "/analytics/households/" + household_id(2) + "/energy?step=";
    SCOPED_TRACE(base + rq.step);
    auto r = http_get(port(), base + rq.step + "&start=" + iso(start) + "&end=" + iso(end));
    ASSERT_EQ(r.status, 200) << r.body;
    auto d = parse_json(r.body);
    EXPECT_EQ(std::string(d["start"].GetString()), iso(al_start)) << "start rounded down";
    EXPECT_EQ(std::string(d["end"].GetString()), iso(al_end)) << "end rounded up";
    auto expected = brute(
        "SELECT to_char(date_bin('" + rq.sql_width + "', ts, '2000-01-01 00:00:00+00'), "
        "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), " + (rq.power ? "avg(power_w)" : "sum(energy_wh)") +
        " FROM telemetry WHERE " + (rq.power ? "device_id = '" + device_id(7)
                                            : "household_id = '" + household_id(2)) +
        "' AND ts >= '" + iso(al_start) + "' AND ts < '" + iso(al_end) + "' GROUP BY 1");
    auto& series = d["series"];
    ASSERT_EQ(series.Size(), expected.size());
    ASSERT_GT(series.Size(), 0u);
    // The first bucket is the one holding start, whole: rows before start count in it.
    EXPECT_EQ(std::string(series[0]["t"].GetString()), iso(al_start));
    for (auto& p : series.GetArray()) {
      auto t = *parse_rfc3339(p["t"].GetString());
      EXPECT_GE(t, al_start);
      EXPECT_LE(t + rq.width, al_end) << p["t"].GetString() << " runs past end";
      auto& v = p[rq.power ? "avg" : "v"];
      double want = expected[p["t"].GetString()];
      if (std::isnan(want))
        EXPECT_TRUE(v.IsNull()) << p["t"].GetString();
      else
        EXPECT_NEAR(v.GetDouble(), want, 1e-6 * (1 + std::fabs(want))) << p["t"].GetString();
    }
    // The aligned request is the same question: same cache key, same answer.
    auto aligned = base + rq.step + "&start=" + iso(al_start) + "&end=" + iso(al_end);
    http_result again;
    for (int i = 0; i < 50; ++i) {
      again = http_get(port(), aligned);
      if (again.headers["x-cache"] == "hit")
        break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    EXPECT_EQ(again.headers["x-cache"], "hit");
    auto d2 = parse_json(again.body);
    EXPECT_EQ(std::string(d2["start"].GetString()), iso(al_start));
    EXPECT_EQ(std::string(d2["end"].GetString()), iso(al_end));
    EXPECT_TRUE(d2["series"] == d["series"]) << again.body;
  }
}

TEST_F(Api, PowerAvgAndMaxMatchBruteForce) {
  auto did = device_id(5);
  for (std::string step : {"1m", "1h"}) {
    auto now = now_micros();
    auto width = step == "1m" ? minute : 60 * minute;
    auto start = floor_to(now - 5 * 60 * minute, width), end = ceil_to(now, width);
    auto r = http_get(port(), "/analytics/devices/" + did + "/power?step=" + step + "&start=" +
                                  iso(start) + "&end=" + iso(end));
    ASSERT_EQ(r.status, 200) << r.body;
    auto d = parse_json(r.body);
    EXPECT_EQ(std::string(d["device_id"].GetString()), did);
    std::string w = step == "1m" ? "1 minute" : "1 hour";
    auto avg = brute("SELECT to_char(date_bin('" + w + "', ts, '2000-01-01 00:00:00+00'), "
                     "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), avg(power_w) FROM telemetry WHERE "
                     "device_id = '" + did + "' AND ts >= '" + iso(start) + "' AND ts < '" +
                     iso(end) + "' GROUP BY 1");
    auto mx = brute("SELECT to_char(date_bin('" + w + "', ts, '2000-01-01 00:00:00+00'), "
                    "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), max(power_w) FROM telemetry WHERE "
                    "device_id = '" + did + "' AND ts >= '" + iso(start) + "' AND ts < '" +
                    iso(end) + "' GROUP BY 1");
    ASSERT_EQ(d["series"].Size(), avg.size());
    for (auto& p : d["series"].GetArray()) {
      std::string t = p["t"].GetString();
      if (std::isnan(avg[t])) {
        EXPECT_TRUE(p["avg"].IsNull());
      } else {
        EXPECT_NEAR(p["avg"].GetDouble(), avg[t], 1e-6 * (1 + avg[t])) << t;
        EXPECT_NEAR(p["max"].GetDouble(), mx[t], 1e-9) << t;
      }
    }
  }
}

TEST_F(Api, TopDevicesAreTheHouseholdsLargestConsumersHighestFirst) {
  auto hid = household_id(3);
  auto r = http_get(port(), "/analytics/households/" + hid + "/top-devices?limit=3");
  ASSERT_EQ(r.status, 200) << r.body;
  auto d = parse_json(r.body);
  auto start = *parse_rfc3339(d["window"]["start"].GetString());
  auto end = *parse_rfc3339(d["window"]["end"].GetString());
  EXPECT_EQ(end - start, 24 * 60 * minute);
  auto expected = brute("SELECT device_id::text, sum(energy_wh) FROM telemetry WHERE "
                        "household_id = '" + hid + "' AND ts >= '" + iso(start) +
                        "' AND ts < '" + iso(end) + "' GROUP BY 1");
  auto& devs = d["devices"];
  ASSERT_EQ(devs.Size(), 3u);
  double prev = INFINITY;
  for (auto& x : devs.GetArray()) {
    double e = x["energy_wh"].GetDouble();
    EXPECT_LE(e, prev);
    prev = e;
    EXPECT_NEAR(e, expected.at(x["device_id"].GetString()), 1e-6 * (1 + e));
  }
  // The three returned are the three largest of four.
  std::vector<double> all;
  for (auto& [k, v] : expected)
    all.push_back(v);
  std::sort(all.rbegin(), all.rend());
  EXPECT_NEAR(devs[2]["energy_wh"].GetDouble(), all[2], 1e-6 * (1 + all[2]));
}

TEST_F(Api, EveryBadRequestGetsAJsonErrorNamingTheProblem) {
  auto hid = household_id(1);
  auto base = "/analytics/households/" + hid + "/energy";
  expect_error(http_get(port(), "/analytics/households/not-a-uuid/energy"), 400,
               "invalid_household_id");
  expect_error(http_get(port(), "/analytics/devices/1234/power"), 400, "invalid_device_id");
  expect_error(http_get(port(), base + "?start=last%20week"), 400, "invalid_start");
  expect_error(http_get(port(), base + "?start=2026-11-27T12:00:00Z&end=2026-11-26T12:00:00Z"),
               400, "invalid_range");
  expect_error(http_get(port(), base + "?step=10m"), 400, "invalid_step");
  expect_error(http_get(port(), base + "?start=1990-01-01T00:00:00Z"), 400, "range_too_large");
  expect_error(http_get(port(), base + "?foo=1"), 400, "unknown_parameter");
  expect_error(http_get(port(), "/analytics/households/" + hid + "/top-devices?limit=x"), 400,
               "invalid_limit");
  expect_error(http_get(port(), "/analytics/households/" + household_id(999) + "/energy"), 404,
               "household_not_found");
  expect_error(http_get(port(), "/analytics/households/" + household_id(999) + "/top-devices"),
               404, "household_not_found");
  expect_error(http_get(port(), "/analytics/devices/" + device_id(999) + "/power"), 404,
               "device_not_found");
  expect_error(http_get(port(), "/nope"), 404, "not_found");
  expect_error(http_request(port(), "DELETE", base), 405, "method_not_allowed");
  expect_error(http_request(port(), "POST", "/telemetry", std::string(2 << 20, 'x')), 413,
               "body_too_large");
}

TEST_F(Api, RepeatedRequestIsACacheHitWithTheSameBody) {
  auto target = "/analytics/households/" + household_id(1) + "/energy?step=1h";
  auto first = http_get(port(), target);
  ASSERT_EQ(first.status, 200);
  EXPECT_EQ(first.headers["x-cache"], "miss");
  // The answer is stored right after it is sent; poll briefly for the hit.
  http_result second;
  for (int i = 0; i < 50; ++i) {
    second = http_get(port(), target);
    if (second.headers["x-cache"] == "hit")
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(second.status, 200);
  EXPECT_EQ(second.headers["x-cache"], "hit");
  EXPECT_EQ(second.body, first.body) << "a cached answer keeps its own fresh_as_of";
  EXPECT_GE(redis_->dbsize(), 1);
}

TEST_F(Api, FreshAsOfNeverClaimsDataThatIsNotReflected) {
  auto did = device_id(2);
  auto power_at = [&](std::int64_t bucket, std::int64_t salt) {
    // Each call uses a distinct range so that it is computed, not served from the cache.
    auto r = http_get(port(), "/analytics/devices/" + did + "/power?step=1m&start=" +
                                  iso(bucket - salt * minute) + "&end=" + iso(bucket + minute));
    EXPECT_EQ(r.status, 200) << r.body;
    auto d = parse_json(r.body);
    std::optional<double> max;
    for (auto& p : d["series"].GetArray())
      if (*parse_rfc3339(p["t"].GetString()) == bucket && p["max"].IsNumber())
        max = p["max"].GetDouble();
    return std::make_pair(max, *parse_rfc3339(d["fresh_as_of"].GetString()));
  };
  auto db_now = [&] {
    return std::stoll(db_->scalar("SELECT (extract(epoch from clock_timestamp()) * 1e6)::bigint"));
  };
  // Answers come from the live tail's latest snapshot (up to live.interval old) or from the
  // database: a write shows within a few seconds, not always at once. What must hold for every
  // answer on the way: fresh_as_of is never ahead of the database clock, and an answer that
  // claims an instant at or after the commit shows the value (never claims what it lacks).
  std::int64_t salt = 0;
  auto until_visible = [&](std::int64_t bucket, double expected, std::int64_t committed_at) {
    std::int64_t fresh = 0;
    for (int i = 0; i < 60; ++i) {
      auto before = db_now();
      auto [v, f] = power_at(bucket, ++salt);
      fresh = f;
      EXPECT_LE(f, db_now()) << "fresh_as_of ahead of the database clock";
      EXPECT_LE(f, std::max(before, db_now()));
      bool shown = v && *v == expected;
      if (f >= committed_at) {
        EXPECT_TRUE(shown) << "an answer fresh as of the commit lacks the value (poll " << i << ")";
      }
      if (shown)
        return std::make_pair(true, f);
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return std::make_pair(false, fresh);
  };
  // Once the tail has published, answers come from its snapshots (the path that lags): the
  // claims below are then checked against answers older than the writes.
  for (int i = 0; i < 200 && !live_published(port()); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  // 1) A new reading (above the watermark) shows within seconds (the live tail or raw rows).
  db_->exec("INSERT INTO telemetry VALUES (now(), '" + did + "', '" + household_id(1) +
            "', 99999, 1)");
  auto committed = db_now();
  auto [shown1, fresh1] = until_visible(floor_to(committed, minute), 99999, committed);
  EXPECT_TRUE(shown1) << "a new reading not visible within 6 s";
  // 2) A late reading below the watermark is not in the materialised rows until a refresh,
  //    but reads serve its logged range from raw rows: visible within seconds, and
  //    fresh_as_of may claim it.
  auto bucket = floor_to(committed - 30 * minute, minute);
  db_->exec("INSERT INTO telemetry VALUES ('" + iso(bucket + 1000000) + "', '" + did + "', '" +
            household_id(1) + "', 88888, 1)");
  auto late_committed = db_now();
  auto [shown2, fresh2] = until_visible(bucket, 88888, late_committed);
  EXPECT_TRUE(shown2) << "a late reading not visible within 6 s, before any refresh";
  // 3) After a refresh the late reading still shows, and answers fresh as of any instant after
  //    its commit keep showing it.
  db::session s{db_->url()};
  db::refresh_cycle(s, *db::find_rollup("device_1m"),
                    {2 * 60 * minute, minute, 6 * 60 * minute});
  auto [shown3, fresh3] = until_visible(bucket, 88888, late_committed);
  EXPECT_TRUE(shown3) << "the late reading vanished after the refresh";
  EXPECT_GE(fresh3, fresh2 - 2 * 1000 * 1000);
  EXPECT_GE(fresh1, committed - 10 * 1000 * 1000);
}

// Issue 9 §3: a late insert, update or delete below the watermarks of every rollup is visible
// through the API (cache on, the windows a dashboard polls) within 10 s, with no refresh
// (the test servers refresh hourly), and fresh_as_of never ahead of the database clock.
TEST_F(Api, LateInsertUpdateDeleteAreVisibleWithinTenSeconds) {
  const auto hid = household_id(3);
  const auto did = device_id(10);  // a device of household 3
  auto db_now = [&] {
    return std::stoll(db_->scalar("SELECT (extract(epoch from clock_timestamp()) * 1e6)::bigint"));
  };
  const auto now = db_now();
  // 40 minutes late (below device_1m's and household_5m's watermarks) and 3 hours late (below
  // device_1h's), each at second 7 of its minute.
  const auto t40 = floor_to(now - 40 * minute, minute) + 7 * micros_per_second;
  const auto t3h = floor_to(now - 180 * minute, minute) + 7 * micros_per_second;
  for (auto& r : db::rollups())
    ASSERT_LT(r.name == "device_1h" ? t3h : t40,
              std::stoll(db_->scalar("SELECT (extract(epoch from watermark) * 1e6)::bigint FROM "
                                     "rollup_state WHERE name = '" + r.name + "'")))
        << r.name;
  const auto hour = 60 * minute;
  struct probe {
    std::string path;
    std::int64_t bucket;
    std::string field;
  };
  const probe probes[] = {
      // The dashboard's default energy window (24 h ending with the current bucket).
      {"/analytics/households/" + hid + "/energy", floor_to(t40, 5 * minute), "v"},
      // The default power window (the last hour, 1 m).
      {"/analytics/devices/" + did + "/power", floor_to(t40, minute), "max"},
      // Hourly power over the last day (device_1h).
      {"/analytics/devices/" + did + "/power?step=1h&start=" + iso(now - 24 * hour) + "&end=" +
           iso(now),
       floor_to(t3h, hour), "max"},
  };
  auto value = [&](const probe& p) -> std::optional<double> {
    auto r = http_get(port(), p.path);
    EXPECT_EQ(r.status, 200) << r.body;
    auto d = parse_json(r.body);
    EXPECT_LE(*parse_rfc3339(d["fresh_as_of"].GetString()), db_now()) << p.path;
    for (auto& pt : d["series"].GetArray())
      if (*parse_rfc3339(pt["t"].GetString()) == p.bucket && pt[p.field.c_str()].IsNumber())
        return pt[p.field.c_str()].GetDouble();
    return std::nullopt;
  };
  // What raw rows say now, per probe (energy: sum; power: max).
  auto want = [&](const probe& p) -> std::optional<double> {
    bool energy = p.field == "v";
    auto width = p.path.find("step=1h") != std::string::npos ? hour
                 : energy                                     ? 5 * minute
                                                              : minute;
    auto v = db_->scalar(std::string("SELECT ") + (energy ? "sum(energy_wh)" : "max(power_w)") +
                         " FROM telemetry WHERE " +
                         (energy ? "household_id = '" + hid + "'" : "device_id = '" + did + "'") +
                         " AND ts >= '" + iso(p.bucket) + "' AND ts < '" + iso(p.bucket + width) +
                         "'");
    if (v.empty())
      return std::nullopt;
    return std::stod(v);
  };
  for (auto& p : probes)
    value(p);  // cached now: the next answers may come from the cache
  auto visible_within = [&](const std::string& what) {
    auto started = std::chrono::steady_clock::now();
    for (auto& p : probes) {
      auto expected = want(p);
      ASSERT_TRUE(expected) << what << " " << p.path;
      for (;;) {
        auto got = value(p);
        if (got && std::fabs(*got - *expected) <= 1e-6 * (1 + std::fabs(*expected)))
          break;
        auto waited = std::chrono::steady_clock::now() - started;
        ASSERT_LT(waited, std::chrono::seconds(10))
            << what << " not visible at " << p.path << ": " << (got ? *got : NAN) << " vs "
            << *expected;
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
      }
    }
    std::printf("%s visible after %.1f s\n", what.c_str(),
                std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  };
  db_->exec("INSERT INTO telemetry VALUES ('" + iso(t40) + "', '" + did + "', '" + hid +
            "', 77777, 444), ('" + iso(t3h) + "', '" + did + "', '" + hid + "', 66666, 1)");
  visible_within("late insert");
  db_->exec("UPDATE telemetry SET power_w = power_w + 11111, energy_wh = energy_wh + 222 WHERE "
            "device_id = '" + did + "' AND ts IN ('" + iso(t40) + "', '" + iso(t3h) + "')");
  visible_within("late update");
  db_->exec("DELETE FROM telemetry WHERE device_id = '" + did + "' AND ts IN ('" + iso(t40) +
            "', '" + iso(t3h) + "')");
  visible_within("late delete");
}

TEST_F(Api, OperationsEndpoints) {
  EXPECT_EQ(http_get(port(), "/healthz").status, 200);
  EXPECT_EQ(http_get(port(), "/readyz").status, 200);
  auto m = http_get(port(), "/metrics");
  ASSERT_EQ(m.status, 200);
  for (auto* name : {"joule_http_request_duration_seconds_bucket", "joule_cache_requests_total",
                     "joule_db_pool_queue_depth", "joule_db_pool_in_flight",
                     "joule_db_pool_timeouts_total", "joule_rollup_lag_seconds",
                     "joule_rollup_refresh_duration_seconds", "joule_actor_restarts_total"})
    EXPECT_NE(m.body.find(name), std::string::npos) << name;
  auto st = http_get(port(), "/admin/status");
  ASSERT_EQ(st.status, 200);
  auto d = parse_json(st.body);
  EXPECT_TRUE(d.HasMember("db_pool"));
  EXPECT_TRUE(d.HasMember("cache"));
  EXPECT_TRUE(d.HasMember("refresh.device_1m"));
  EXPECT_TRUE(d.HasMember("supervisor"));
}

TEST_F(Api, SixteenPipelinedRequestsOnOneConnectionAreAnsweredInOrder) {
  // Cache hits, database reads, instant answers and errors finish in a different order than
  // they were sent; the answers must still come back in request order.
  struct expect {
    std::string target;
    int status;
    std::string in_body;
  };
  std::vector<expect> want;
  for (int h = 1; h <= 3; ++h) {
    auto hid = household_id(h);
    want.push_back({"/analytics/households/" + hid + "/energy?step=5m", 200,
                    "\"household_id\":\"" + hid + "\""});
    want.push_back({"/analytics/households/" + hid + "/top-devices?limit=2", 200,
                    "\"household_id\":\"" + hid + "\""});
    want.push_back({"/analytics/devices/" + device_id(4 * h) + "/power?step=1h", 200,
                    "\"device_id\":\"" + device_id(4 * h) + "\""});
  }
  want.push_back({"/healthz", 200, "\"status\":\"ok\""});
  want.push_back({"/nope", 404, "\"not_found\""});
  want.push_back({"/analytics/households/" + household_id(999) + "/energy", 404,
                  "household_not_found"});
  want.push_back({"/analytics/households/not-a-uuid/energy", 400, "invalid_household_id"});
  want.push_back({"/readyz", 200, "\"ready\""});
  want.push_back({"/analytics/households/" + household_id(2) + "/energy?step=1h", 200,
                  "\"step\":\"1h\""});
  want.push_back({"/analytics/devices/" + device_id(999) + "/power", 404, "device_not_found"});
  ASSERT_EQ(want.size(), 16u);
  {
    raw_connection c{port()};
    ASSERT_TRUE(c.connected());
    std::string all;
    for (auto& w : want)
      all += get_request(w.target);
    ASSERT_TRUE(c.send(all));  // back to back, one write
    for (std::size_t i = 0; i < want.size(); ++i) {
      auto r = c.read_response();
      ASSERT_EQ(r.status, want[i].status) << i << " " << want[i].target << ": " << r.body;
      EXPECT_NE(r.body.find(want[i].in_body), std::string::npos)
          << i << " " << want[i].target << ": " << r.body;
    }
  }
  // Every session ends with its connection: once the clients are gone, none is left. (A
  // scrape of /metrics sees exactly one: its own.)
  auto& sessions = metrics::global().get_gauge("joule_http_sessions", "");
  for (int i = 0; i < 500 && sessions.value() != 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(sessions.value(), 0);
  auto m = http_get(port(), "/metrics");
  EXPECT_NE(m.body.find("\njoule_http_sessions 1\n"), std::string::npos) << m.body;
}

} // namespace
