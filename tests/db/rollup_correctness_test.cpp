// Rollups against brute force: for every bucket below the watermark, each rollup must equal a
// GROUP BY over the raw rows, after random history, late inserts, updates and deletes (inside
// and outside start_offset), rows around day-partition boundaries and concurrent refreshers.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include <pqxx/pqxx>

#include "core/timefmt.hpp"
#include "db/partitions.hpp"
#include "db/rollups.hpp"
#include "db/session.hpp"
#include "tests/support/pg_test_db.hpp"

using namespace joule;
using namespace joule::db;

namespace {

constexpr std::int64_t minute = 60 * micros_per_second;
constexpr std::int64_t hour = 60 * minute;
constexpr std::int64_t day = 24 * hour;

refresh_policy_us policy_for(const rollup_spec& r) {
  if (r.name == "device_1m")
    return {2 * hour, minute, 6 * hour};
  if (r.name == "household_5m")
    return {day, 5 * minute, 6 * hour};
  return {7 * day, hour, 6 * hour};
}

class Rollups : public ::testing::Test {
protected:
  static void SetUpTestSuite() { db_ = new test::pg_test_db("joule_test_rollups"); }
  static void TearDownTestSuite() {
    delete db_;
    db_ = nullptr;
  }

  void SetUp() override {
    s_ = std::make_unique<session>(db_->url());
    db_->exec("TRUNCATE telemetry, devices, rollup_device_1m, rollup_household_5m, "
              "rollup_device_1h, rollup_invalidations; UPDATE rollup_state SET watermark = NULL");
    ensure_partitions(*s_, day, 2, 10);
    // 24 devices in 6 households.
    db_->exec("INSERT INTO devices (id, household_id) SELECT "
              "md5('dev' || i)::uuid, md5('hh' || (i % 6))::uuid FROM generate_series(1, 24) i");
  }

  // Random readings for every device in [now - from, now - to), one per `every` seconds on
  // average, with some NULL power values.
  void insert_random(const std::string& from, const std::string& to, int every_s, double seed) {
    db_->exec("SELECT setseed(" + std::to_string(seed) +
              "); INSERT INTO telemetry (ts, device_id, household_id, power_w, energy_wh) "
              "SELECT t + random() * interval '" + std::to_string(every_s) + " seconds', d.id, "
              "d.household_id, CASE WHEN random() < 0.05 THEN NULL ELSE random() * 3000 END, "
              "random() * 10 FROM devices d, generate_series(now() - interval '" + from +
              "', now() - interval '" + to + "', interval '" + std::to_string(every_s) +
              " seconds') t");
  }

  refresh_report cycle(const rollup_spec& r) {
    refresh_report rep;
    // Catch-up comes in batches: loop like the refresh actor does.
    for (int i = 0; i < 100; ++i) {
      rep = refresh_cycle(*s_, r, policy_for(r));
      if (!rep.more_pending)
        break;
    }
    return rep;
  }

  void refresh_all() {
    for (auto& r : rollups())
      cycle(r);
  }

  // Buckets in [since, watermark) where the rollup and the brute-force GROUP BY disagree.
  long mismatches(const rollup_spec& r, const std::string& since = "'-infinity'") {
    std::string max_col = r.has_max ? "power_w_max" : "NULL::double precision";
    std::string bf_max = r.has_max ? "max(power_w)" : "NULL::double precision";
    auto sql =
        "WITH st AS (SELECT watermark wm FROM rollup_state WHERE name = '" + r.name + "'), "
        "bf AS (SELECT date_bin('" + r.width_sql + "', ts, '2000-01-01 00:00:00+00') b, " +
        r.key_column + " k, sum(energy_wh) e, sum(power_w) ps, count(power_w) pc, " + bf_max +
          " pm FROM telemetry, st WHERE ts < st.wm GROUP BY 1, 2), "
        "ru AS (SELECT bucket b, " + r.key_column + " k, energy_wh_sum e, power_w_sum ps, "
        "power_w_count pc, " + max_col + " pm FROM " + r.table + ", st WHERE bucket < st.wm) "
        "SELECT count(*), min(b)::text || ' ' || max(b)::text || ' ' || min(now())::text FROM bf FULL JOIN ru USING (b, k) WHERE b >= " + since + " AND (bf.b IS NULL OR ru.b IS NULL "
        "OR abs(coalesce(bf.e, 0) - coalesce(ru.e, 0)) > 1e-6 * (1 + abs(coalesce(bf.e, 0))) "
        "OR abs(coalesce(bf.ps, 0) - coalesce(ru.ps, 0)) > 1e-6 * (1 + abs(coalesce(bf.ps, 0))) "
        "OR bf.pc <> ru.pc OR bf.pm IS DISTINCT FROM ru.pm)";
    pqxx::connection c{db_->url() + " options='-c TimeZone=UTC'"};
    pqxx::nontransaction q{c};
    auto res = q.exec(sql);
    if (res[0][0].as<long>() > 0)
      std::printf("%s mismatches: %s\n", r.name.c_str(), res[0][1].c_str());
    return res[0][0].as<long>();
  }

  std::int64_t watermark(const rollup_spec& r) {
    return std::stoll(db_->scalar("SELECT (extract(epoch from watermark) * 1000000)::bigint "
                                  "FROM rollup_state WHERE name = '" + r.name + "'"));
  }

  static test::pg_test_db* db_;
  std::unique_ptr<session> s_;
};

test::pg_test_db* Rollups::db_ = nullptr;

TEST_F(Rollups, FirstRunMaterialisesAllHistoryAcrossDayPartitions) {
  insert_random("50 hours", "0 seconds", 60, 0.11);
  auto rows = std::stol(db_->scalar("SELECT count(*) FROM telemetry"));
  ASSERT_GT(rows, 50 * 60 * 24 - 100);
  // Rows span at least two midnights, so several day partitions are involved.
  ASSERT_GE(std::stol(db_->scalar("SELECT count(DISTINCT tableoid) FROM telemetry")), 3);
  auto now = std::stoll(db_->scalar("SELECT (extract(epoch from now()) * 1000000)::bigint"));
  for (auto& r : rollups()) {
    auto rep = cycle(r);
    EXPECT_FALSE(rep.skipped);
    EXPECT_EQ(mismatches(r), 0) << r.name;
    auto wm = watermark(r);
    EXPECT_LE(wm, floor_to(now - policy_for(r).end_offset, r.width)) << r.name;
    EXPECT_GE(wm, floor_to(now - policy_for(r).end_offset, r.width) - r.width) << r.name;
    // Every 1 h bucket older than the watermark is there (all history, not just start_offset).
    auto buckets = std::stol(db_->scalar("SELECT count(DISTINCT bucket) FROM " + r.table));
    EXPECT_GE(buckets, (wm - (now - 50 * hour)) / r.width - 1) << r.name;
  }
}

TEST_F(Rollups, LateInsertsUpdatesAndDeletesInsideStartOffset) {
  insert_random("30 hours", "0 seconds", 30, 0.21);
  refresh_all();
  for (auto& r : rollups())
    ASSERT_EQ(mismatches(r), 0) << r.name;
  // Late writes below every watermark but inside every start_offset (the 1 m policy reaches
  // back 2 h): inserts, updates of values, updates that move rows across buckets, deletes.
  insert_random("100 minutes", "70 minutes", 7, 0.31);
  db_->exec("UPDATE telemetry SET power_w = power_w * 2, energy_wh = energy_wh + 1 "
            "WHERE ts BETWEEN now() - interval '90 minutes' AND now() - interval '80 minutes' "
            "AND device_id = md5('dev3')::uuid");
  db_->exec("UPDATE telemetry SET ts = ts + interval '7 minutes' "
            "WHERE ts BETWEEN now() - interval '110 minutes' AND now() - interval '105 minutes'");
  db_->exec("DELETE FROM telemetry WHERE ts BETWEEN now() - interval '75 minutes' AND "
            "now() - interval '74 minutes'");
  // The household and hourly rollups also see late writes from many hours back.
  db_->exec("DELETE FROM telemetry WHERE ts BETWEEN now() - interval '20 hours' AND "
            "now() - interval '19 hours 50 minutes' AND device_id = md5('dev5')::uuid");
  for (auto& r : rollups())
    EXPECT_GT(mismatches(r), 0) << r.name << ": the late writes should show before a refresh";
  refresh_all();
  EXPECT_EQ(mismatches(*find_rollup("household_5m")), 0);
  EXPECT_EQ(mismatches(*find_rollup("device_1h")), 0);
  // The 20-hour-old delete is outside the 1 m policy's 2 h start_offset: inside the window the
  // rollup is exact, the old buckets wait for a manual refresh (TimescaleDB semantics).
  auto& m1 = *find_rollup("device_1m");
  EXPECT_EQ(mismatches(m1, "now() - interval '2 hours'"), 0);
  EXPECT_GT(mismatches(m1), 0);
  auto now = std::stoll(db_->scalar("SELECT (extract(epoch from now()) * 1000000)::bigint"));
  refresh_range(*s_, m1, policy_for(m1), now - 30 * hour, now);
  EXPECT_EQ(mismatches(m1), 0);
  EXPECT_EQ(db_->scalar("SELECT count(*) FROM rollup_invalidations WHERE rollup <> 'device_1h'"),
            "0");
}

TEST_F(Rollups, UpdateAcrossMidnightPartitionBoundary) {
  insert_random("40 hours", "0 seconds", 60, 0.41);
  refresh_all();
  // Move the readings around the last midnight to the other side: a cross-partition UPDATE.
  db_->exec("UPDATE telemetry SET ts = ts + interval '20 minutes' WHERE ts >= "
            "date_trunc('day', now()) - interval '10 minutes' AND ts < date_trunc('day', now())");
  db_->exec("UPDATE telemetry SET ts = ts - interval '30 minutes' WHERE ts >= "
            "date_trunc('day', now()) + interval '15 minutes' AND ts < date_trunc('day', now()) "
            "+ interval '25 minutes' AND device_id = md5('dev7')::uuid");
  refresh_all();
  EXPECT_EQ(mismatches(*find_rollup("household_5m")), 0);
  EXPECT_EQ(mismatches(*find_rollup("device_1h")), 0);
  auto& m1 = *find_rollup("device_1m");
  EXPECT_EQ(mismatches(m1, "now() - interval '2 hours'"), 0);
  auto now = std::stoll(db_->scalar("SELECT (extract(epoch from now()) * 1000000)::bigint"));
  refresh_range(*s_, m1, policy_for(m1), now - 2 * day, now);
  EXPECT_EQ(mismatches(m1), 0);
}

TEST_F(Rollups, LateDataOlderThanStartOffsetWaitsForManualRefresh) {
  insert_random("5 hours", "0 seconds", 30, 0.51);
  auto& r = *find_rollup("device_1m");
  cycle(r);
  ASSERT_EQ(mismatches(r), 0);
  insert_random("3 hours", "2 hours 30 minutes", 5, 0.61);  // older than start_offset (2 h)
  auto rep = cycle(r);
  EXPECT_GT(rep.invalidations_kept, 0);
  EXPECT_GT(mismatches(r), 0) << "TimescaleDB semantics: the policy does not repair it";
  auto now = std::stoll(db_->scalar("SELECT (extract(epoch from now()) * 1000000)::bigint"));
  auto manual = refresh_range(*s_, r, policy_for(r), now - 4 * hour, now - 2 * hour);
  EXPECT_GT(manual.rows_written, 0);
  EXPECT_EQ(mismatches(r), 0);
  EXPECT_EQ(db_->scalar("SELECT count(*) FROM rollup_invalidations WHERE rollup = 'device_1m'"),
            "0");
}

TEST_F(Rollups, TwoRefreshersAndAWriterAtOnceNeverDoubleCount) {
  insert_random("3 hours", "0 seconds", 20, 0.71);
  std::atomic<bool> stop{false};
  std::atomic<int> skipped{0}, ran{0};
  auto refresher = [&] {
    session s{db_->url()};
    while (!stop) {
      for (auto& r : rollups()) {
        auto rep = refresh_cycle(s, r, policy_for(r));
        (rep.skipped ? skipped : ran)++;
      }
    }
  };
  std::thread a{refresher}, b{refresher};
  // Meanwhile late and current writes keep arriving.
  for (int i = 0; i < 15; ++i) {
    insert_random(std::to_string(100 - i * 5) + " minutes", std::to_string(95 - i * 5) + " minutes",
                  11, 0.01 * i);
    db_->exec("DELETE FROM telemetry WHERE ctid IN (SELECT ctid FROM telemetry WHERE ts > now() - "
              "interval '90 minutes' ORDER BY random() LIMIT 20)");
  }
  stop = true;
  a.join();
  b.join();
  EXPECT_GT(ran.load(), 0);
  refresh_all();
  for (auto& r : rollups())
    EXPECT_EQ(mismatches(r), 0) << r.name;
  std::printf("concurrent refreshes: %d ran, %d skipped (lock held by the other)\n", ran.load(),
              skipped.load());
}

TEST_F(Rollups, RowsThatLandedInTheDefaultPartitionAreMovedAndCounted) {
  // 20 days back: older than the partitions created (10 behind), so telemetry_default.
  db_->exec("INSERT INTO telemetry SELECT now() - interval '20 days' + i * interval '1 minute', "
            "md5('dev1')::uuid, md5('hh1')::uuid, 100, 1 FROM generate_series(0, 59) i");
  ASSERT_EQ(db_->scalar("SELECT count(*) FROM telemetry_default"), "60");
  auto& r = *find_rollup("device_1h");
  cycle(r);
  EXPECT_EQ(mismatches(r), 0);
  auto rep = ensure_partitions(*s_, day, 2, 25);
  EXPECT_GT(rep.created, 0);
  EXPECT_EQ(rep.rows_moved, 60);
  EXPECT_EQ(db_->scalar("SELECT count(*) FROM telemetry_default"), "0");
  EXPECT_EQ(db_->scalar("SELECT count(*) FROM telemetry"), "60");
  EXPECT_EQ(mismatches(r), 0);
}

} // namespace
