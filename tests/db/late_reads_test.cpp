// Late data in seconds (issue 9 §3): buckets named by pending invalidations are read from the
// next finer exact source (raw rows, or device_1m under device_1h) until their refresh lands.
// Every answer of every endpoint, step and rollup must equal a GROUP BY over raw rows with
// late inserts, updates, deletes and an update across a midnight partition boundary pending,
// after a partial refresh (device_1m only: the 1 h answers patch from it), after full refresh,
// and with ranges a batched refresh put back; fresh_as_of is never ahead of the data and, once
// the late writes are served, not behind them.
//
// Time of day: the data spans the last 40 h and every late write is placed relative to now()
// (the midnight is the one 12-36 h back), so the test is the same at any hour.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <optional>

#include <pqxx/pqxx>

#include "core/timefmt.hpp"
#include "db/analytics.hpp"
#include "db/partitions.hpp"
#include "db/rollups.hpp"
#include "db/session.hpp"
#include "tests/support/pg_test_db.hpp"

using namespace joule;
using namespace joule::db;

namespace {

constexpr std::int64_t second = micros_per_second;
constexpr std::int64_t minute = 60 * second;
constexpr std::int64_t hour = 60 * minute;
constexpr std::int64_t day = 24 * hour;

// Windows reaching back over all the data, so every late write is inside start_offset and
// the refresh repairs it (the read path does not depend on the policy).
refresh_policy_us policy_for(const rollup_spec& r, std::int64_t max_batch = 0) {
  return {3 * day, r.width, max_batch};
}

bool near(const std::optional<double>& a, const std::optional<double>& b) {
  if (!a || !b)
    return !a && !b;
  return std::fabs(*a - *b) <= 1e-9 * (1 + std::fabs(*b));
}

class LateReads : public ::testing::Test {
protected:
  static void SetUpTestSuite() { db_ = new test::pg_test_db("joule_test_late"); }
  static void TearDownTestSuite() {
    delete db_;
    db_ = nullptr;
  }

  void SetUp() override {
    s_ = std::make_unique<session>(db_->url());
    db_->exec("TRUNCATE telemetry, devices, rollup_device_1m, rollup_household_5m, "
              "rollup_device_1h, rollup_invalidations; UPDATE rollup_state SET watermark = NULL");
    ensure_partitions(*s_, day, 2, 10);
    // 4 households x 3 devices, one reading per ~50 s over the last 40 h (some NULL power).
    db_->exec("INSERT INTO devices (id, household_id) SELECT md5('ld' || i)::uuid, "
              "md5('lh' || (i % 4))::uuid FROM generate_series(1, 12) i");
    db_->exec("SELECT setseed(0.42); INSERT INTO telemetry (ts, device_id, household_id, power_w, "
              "energy_wh) SELECT t + random() * interval '40 seconds', d.id, d.household_id, "
              "CASE WHEN random() < 0.05 THEN NULL ELSE random() * 3000 END, random() * 10 "
              "FROM devices d, generate_series(now() - interval '40 hours', now() - "
              "interval '1 minute', interval '50 seconds') t");
    refresh_all();
    ASSERT_EQ(db_->scalar("SELECT count(*) FROM rollup_invalidations WHERE NOT kept AND lo < "
                          "(SELECT min(watermark) FROM rollup_state)"),
              "0");
  }

  void refresh(const rollup_spec& r, std::int64_t max_batch = 0) {
    for (int i = 0; i < 200 && refresh_cycle(*s_, r, policy_for(r, max_batch)).more_pending; ++i) {
    }
  }
  void refresh_all() {
    for (auto& r : rollups())
      refresh(r);
  }

  std::int64_t db_now() {
    return std::stoll(db_->scalar("SELECT (extract(epoch from now()) * 1000000)::bigint"));
  }
  static std::string household(int h) {
    return db_->scalar("SELECT md5('lh" + std::to_string(h) + "')::uuid");
  }
  static std::string device(int d) {
    return db_->scalar("SELECT md5('ld" + std::to_string(d) + "')::uuid");
  }

  // Rollup buckets below the watermark that differ from raw rows (to show a late write is
  // really pending: the rollup tables alone would answer wrongly).
  long stale_buckets(const rollup_spec& r) {
    auto sql = "WITH st AS (SELECT watermark wm FROM rollup_state WHERE name = '" + r.name +
               "'), bf AS (SELECT date_bin('" + r.width_sql + "', ts, '2000-01-01 00:00:00+00') b, " +
               r.key_column + " k, sum(energy_wh) e, count(power_w) pc FROM telemetry, st WHERE "
               "ts < st.wm GROUP BY 1, 2), ru AS (SELECT bucket b, " + r.key_column + " k, "
               "energy_wh_sum e, power_w_count pc FROM " + r.table + ", st WHERE bucket < st.wm) "
               "SELECT count(*) FROM bf FULL JOIN ru USING (b, k) WHERE bf.b IS NULL OR ru.b IS "
               "NULL OR abs(coalesce(bf.e, 0) - coalesce(ru.e, 0)) > 1e-6 * (1 + abs(coalesce(bf.e, "
               "0))) OR bf.pc <> ru.pc";
    return std::stol(db_->scalar(sql));
  }

  std::map<std::int64_t, point> brute(bool power, const std::string& id, std::int64_t start,
                                      std::int64_t end, std::int64_t step) {
    pqxx::connection c{db_->url()};
    pqxx::nontransaction q{c};
    auto sql = std::string("SELECT (extract(epoch from date_bin($1::interval, ts, "
                           "'2000-01-01 00:00:00+00')) * 1000000)::bigint, ") +
               (power ? "avg(power_w), max(power_w)" : "sum(energy_wh), NULL::float8") +
               " FROM telemetry WHERE " + (power ? "device_id" : "household_id") +
               " = $2::uuid AND ts >= $3::timestamptz AND ts < $4::timestamptz GROUP BY 1";
    std::map<std::int64_t, point> out;
    for (auto row : q.exec_params(sql, std::to_string(step / second) + " seconds", id,
                                  format_rfc3339(start), format_rfc3339(end))) {
      point p;
      p.t = row[0].as<std::int64_t>();
      if (!row[1].is_null())
        p.v = row[1].as<double>();
      if (!row[2].is_null())
        p.max = row[2].as<double>();
      out[p.t] = p;
    }
    return out;
  }

  // Buckets (or devices) of every answer that differ from raw rows; every answer's
  // fresh_as_of is checked to lie in [min_fresh, the database clock after the read].
  int wrong_answers(std::int64_t min_fresh, const std::string& when) {
    int bad = 0;
    auto now = db_now();
    auto check_meta = [&](const answer_meta& m, const std::string& what) {
      EXPECT_TRUE(m.found) << what;
      EXPECT_LE(m.fresh_as_of, db_now()) << what << ": fresh_as_of ahead of the data";
      EXPECT_GE(m.fresh_as_of, min_fresh) << what << " (" << when
                                          << "): fresh_as_of does not claim the late writes";
    };
    auto compare = [&](bool power, const std::string& id, std::int64_t step) {
      series_query q{power ? series_kind::device_power : series_kind::household_energy, id,
                     floor_to(now - 41 * hour, hour), ceil_to(now, hour), step};
      auto got = power ? device_power(*s_, q, read_mode::rollups)
                       : household_energy(*s_, q, read_mode::rollups);
      auto what = std::string(power ? "power " : "energy ") + id + " step " +
                  std::to_string(step / minute) + "m";
      check_meta(got.meta, what);
      auto want = brute(power, id, q.start, q.end, step);
      if (got.series.size() != want.size()) {
        ++bad;
        ADD_FAILURE() << what << " (" << when << "): " << got.series.size()
                      << " buckets, raw rows give " << want.size();
        return;
      }
      for (auto& p : got.series) {
        auto it = want.find(p.t);
        if (it == want.end() || !near(p.v, it->second.v) || !near(p.max, it->second.max)) {
          ++bad;
          ADD_FAILURE() << what << " (" << when << "): bucket " << format_rfc3339(p.t)
                        << " differs from raw rows";
          return;
        }
      }
    };
    for (int h = 0; h < 4; ++h)
      for (auto step : {5 * minute, hour})
        compare(false, household(h), step);
    for (int d = 1; d <= 12; ++d)
      for (auto step : {minute, 5 * minute, hour})
        compare(true, device(d), step);
    // Top devices over the 24 whole hours ending with the current one.
    pqxx::connection c{db_->url()};
    pqxx::nontransaction tx{c};
    for (int h = 0; h < 4; ++h) {
      top_query q{household(h), floor_to(now, hour) + hour - 24 * hour, floor_to(now, hour) + hour,
                  100};
      auto got = top_devices(*s_, q, read_mode::rollups);
      check_meta(got.meta, "top " + q.household_id);
      std::map<std::string, double> want;
      for (auto row : tx.exec_params(
               "SELECT device_id::text, sum(energy_wh) FROM telemetry WHERE household_id = "
               "$1::uuid AND ts >= $2::timestamptz AND ts < $3::timestamptz GROUP BY 1 "
               "HAVING sum(energy_wh) IS NOT NULL",
               q.household_id, format_rfc3339(q.start), format_rfc3339(q.end)))
        want[row[0].as<std::string>()] = row[1].as<double>();
      bool same = got.devices.size() == want.size();
      for (auto& d : got.devices)
        same = same && want.count(d.device_id) && near(d.energy_wh, want[d.device_id]);
      if (!same) {
        ++bad;
        ADD_FAILURE() << "top " << q.household_id << " (" << when << ") differs from raw rows";
      }
    }
    return bad;
  }

  // Late inserts, updates (values, times, across the midnight 12-36 h back) and deletes, all
  // below every watermark. Returns the database clock after they committed.
  std::int64_t late_writes() {
    // Inserts: 40 minutes and 5 hours late for household 1's devices.
    db_->exec("INSERT INTO telemetry SELECT now() - interval '40 minutes' - i * interval '7 "
              "seconds', d.id, d.household_id, 4000 + i, 3 FROM devices d, "
              "generate_series(0, 20) i WHERE d.household_id = md5('lh1')::uuid");
    db_->exec("INSERT INTO telemetry VALUES (now() - interval '5 hours', md5('ld5')::uuid, "
              "md5('lh1')::uuid, 9999, 50)");
    // Update values of device 3 (household 3) 3 h ago; move device 6's readings 7 minutes.
    db_->exec("UPDATE telemetry SET power_w = power_w * 2, energy_wh = energy_wh + 1 WHERE "
              "device_id = md5('ld3')::uuid AND ts BETWEEN now() - interval '3 hours' AND "
              "now() - interval '2 hours 50 minutes'");
    db_->exec("UPDATE telemetry SET ts = ts + interval '7 minutes' WHERE device_id = "
              "md5('ld6')::uuid AND ts BETWEEN now() - interval '9 hours' AND now() - "
              "interval '8 hours 55 minutes'");
    // Delete 20 minutes of device 8 (household 0) 2 h ago.
    db_->exec("DELETE FROM telemetry WHERE device_id = md5('ld8')::uuid AND ts BETWEEN now() - "
              "interval '2 hours 20 minutes' AND now() - interval '2 hours'");
    // Across the midnight 12-36 h back (two day partitions): device 2 forward, device 7 back.
    db_->exec("UPDATE telemetry SET ts = ts + interval '20 minutes' WHERE device_id = "
              "md5('ld2')::uuid AND ts >= date_trunc('day', now() - interval '12 hours') - "
              "interval '10 minutes' AND ts < date_trunc('day', now() - interval '12 hours')");
    db_->exec("UPDATE telemetry SET ts = ts - interval '30 minutes' WHERE device_id = "
              "md5('ld7')::uuid AND ts >= date_trunc('day', now() - interval '12 hours') + "
              "interval '15 minutes' AND ts < date_trunc('day', now() - interval '12 hours') + "
              "interval '25 minutes'");
    return db_now();
  }

  static test::pg_test_db* db_;
  std::unique_ptr<session> s_;
};

test::pg_test_db* LateReads::db_ = nullptr;

TEST_F(LateReads, PendingWritesAreServedExactlyBeforeAndAfterRefresh) {
  ASSERT_EQ(wrong_answers(0, "settled"), 0);
  auto committed = late_writes();
  // The late writes are pending for every rollup: the rollup tables alone are stale.
  for (auto& r : rollups()) {
    EXPECT_GT(stale_buckets(r), 0) << r.name;
    EXPECT_GT(std::stol(db_->scalar("SELECT count(*) FROM rollup_invalidations WHERE rollup = '" +
                                    r.name + "' AND NOT kept")),
              0)
        << r.name;
  }
  EXPECT_EQ(wrong_answers(committed, "pending"), 0);
  // device_1m refreshed, the others not: 1 h device answers patch from the exact 1 m rollup.
  refresh(*find_rollup("device_1m"));
  EXPECT_EQ(stale_buckets(*find_rollup("device_1m")), 0);
  EXPECT_GT(stale_buckets(*find_rollup("device_1h")), 0);
  EXPECT_EQ(wrong_answers(committed, "device_1m refreshed"), 0);
  refresh_all();
  for (auto& r : rollups())
    EXPECT_EQ(stale_buckets(r), 0) << r.name;
  EXPECT_EQ(db_->scalar("SELECT count(*) FROM rollup_invalidations"), "0");
  EXPECT_EQ(wrong_answers(committed, "refreshed"), 0);
}

TEST_F(LateReads, LateLogRowsNameTheirHouseholdsAndCurrentRowsDoNot) {
  auto logged = [&](const std::string& where) {
    return db_->scalar("SELECT count(*) FROM rollup_invalidations WHERE " + where);
  };
  db_->exec("INSERT INTO telemetry VALUES (now() - interval '3 hours', md5('ld5')::uuid, "
            "md5('lh1')::uuid, 1, 1), (now() - interval '4 hours', md5('ld6')::uuid, "
            "md5('lh2')::uuid, 1, 1)");
  EXPECT_EQ(logged("array_length(households, 1) = 2 AND md5('lh1')::uuid = ANY(households) AND "
                   "md5('lh2')::uuid = ANY(households)"),
            "3");
  refresh_all();
  // Current data (above every watermark) is read raw anyway: no households to collect.
  db_->exec("INSERT INTO telemetry VALUES (now(), md5('ld5')::uuid, md5('lh1')::uuid, 1, 1)");
  EXPECT_EQ(logged("true"), "3");
  EXPECT_EQ(logged("households IS NULL"), "3");
  refresh_all();
  // Households untouched by a late write keep reading the rollup; the touched ones are exact.
  auto committed = late_writes();
  EXPECT_EQ(logged("households IS NULL AND NOT kept AND lo < now() - interval '2 hours'"), "0");
  EXPECT_EQ(wrong_answers(committed, "pending, per household"), 0);
}

TEST_F(LateReads, RangesPutBackByABatchedRefreshStayExact) {
  auto committed = late_writes();
  // One bucket's worth of raw time per transaction and a single cycle each: most late ranges
  // go back to the log (without their households) and are still served from raw rows.
  for (auto& r : rollups())
    refresh_cycle(*s_, r, policy_for(r, r.width));
  EXPECT_GT(std::stol(db_->scalar("SELECT count(*) FROM rollup_invalidations WHERE NOT kept")), 0);
  EXPECT_EQ(wrong_answers(committed, "batched"), 0);
  for (auto& r : rollups())
    refresh(r, hour);
  EXPECT_EQ(wrong_answers(committed, "batched, done"), 0);
}

TEST_F(LateReads, KeptRangesStillLowerFreshAsOf) {
  // A late write older than the device_1m policy's window: once a cycle has kept it, the
  // 1 m rollup stays stale there (TimescaleDB semantics) and fresh_as_of says so.
  db_->exec("INSERT INTO telemetry VALUES (now() - interval '30 hours', md5('ld4')::uuid, "
            "md5('lh0')::uuid, 5000, 5)");
  auto committed = db_now();
  auto& m1 = *find_rollup("device_1m");
  refresh_cycle(*s_, m1, {2 * hour, minute, 0});
  EXPECT_EQ(db_->scalar("SELECT count(*) FROM rollup_invalidations WHERE rollup = 'device_1m' "
                        "AND kept"),
            "1");
  auto now = db_now();
  series_query q{series_kind::device_power, device(4), floor_to(now - 31 * hour, hour),
                 floor_to(now - 29 * hour, hour), minute};
  auto got = device_power(*s_, q, read_mode::rollups);
  EXPECT_LT(got.meta.fresh_as_of, committed);
  // device_1h's own log row is still pending: its hourly answer patches the bucket, and not
  // from device_1m, which is stale there (kept), but from raw rows.
  q.step = hour;
  auto hourly = device_power(*s_, q, read_mode::rollups);
  auto want = brute(true, device(4), q.start, q.end, hour);
  ASSERT_EQ(hourly.series.size(), want.size());
  for (auto& p : hourly.series) {
    EXPECT_TRUE(near(p.v, want[p.t].v)) << format_rfc3339(p.t);
    EXPECT_TRUE(near(p.max, want[p.t].max)) << format_rfc3339(p.t);
  }
  EXPECT_GE(hourly.meta.fresh_as_of, committed);
}

} // namespace
