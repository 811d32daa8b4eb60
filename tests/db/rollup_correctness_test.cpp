// Rollups against brute force: for every bucket below the watermark, each rollup must equal a
// GROUP BY over the raw rows, after random history, late inserts, updates and deletes (inside
// and outside start_offset), rows around day-partition boundaries and concurrent refreshers;
// writes that name a partition, TRUNCATE, dropped and detached partitions; late ranges cut
// into bounded batches; old log ranges merged; a rollup built from another rollup.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

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
              "rollup_device_1h, rollup_invalidations; UPDATE rollup_state SET watermark = NULL; "
              "DELETE FROM rollup_state WHERE source IS NOT NULL");
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

  std::int64_t db_now() {
    return std::stoll(db_->scalar("SELECT (extract(epoch from now()) * 1000000)::bigint"));
  }

  long log_rows(const std::string& rollup, const std::string& extra = "true") {
    return std::stol(db_->scalar("SELECT count(*) FROM rollup_invalidations WHERE rollup = '" +
                                 rollup + "' AND " + extra));
  }

  // The real-time read path (what the API serves: rollup tiers below the watermarks, raw rows
  // above) against the same query over raw rows only, for every device and household over
  // the last `hours`: buckets that differ.
  int realtime_mismatches(int hours) {
    auto now = db_now();
    int bad = 0;
    auto compare = [&](const series_result& a, const series_result& b, const std::string& what) {
      if (a.series.size() != b.series.size()) {
        ++bad;
        std::printf("%s: %zu buckets vs %zu raw\n", what.c_str(), a.series.size(),
                    b.series.size());
        return;
      }
      for (size_t i = 0; i < a.series.size(); ++i) {
        auto& x = a.series[i];
        auto& y = b.series[i];
        auto near = [](std::optional<double> p, std::optional<double> q) {
          return p.has_value() == q.has_value() &&
                 (!p || std::abs(*p - *q) <= 1e-6 * (1 + std::abs(*q)));
        };
        if (x.t != y.t || !near(x.v, y.v) || !near(x.max, y.max)) {
          ++bad;
          std::printf("%s: bucket %s differs\n", what.c_str(), format_rfc3339(x.t).c_str());
          return;
        }
      }
    };
    for (int d = 1; d <= 24; ++d) {
      auto id = db_->scalar("SELECT md5('dev" + std::to_string(d) + "')::uuid");
      for (std::int64_t step : {minute, hour}) {
        series_query q{series_kind::device_power, id, floor_to(now - hours * hour, hour),
                       ceil_to(now, hour), step};
        compare(device_power(*s_, q, read_mode::rollups), device_power(*s_, q, read_mode::raw),
                "device " + std::to_string(d) + " step " + std::to_string(step / minute) + "m");
      }
    }
    for (int h = 0; h < 6; ++h) {
      auto id = db_->scalar("SELECT md5('hh" + std::to_string(h) + "')::uuid");
      series_query q{series_kind::household_energy, id, floor_to(now - hours * hour, hour),
                     ceil_to(now, hour), 5 * minute};
      compare(household_energy(*s_, q, read_mode::rollups),
              household_energy(*s_, q, read_mode::raw), "household " + std::to_string(h));
    }
    return bad;
  }

  // Name of the day partition holding `t`.
  std::string partition_at(std::int64_t t) { return partition_name(floor_to(t, day), day); }

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
  // Each policy repairs what lies inside its start_offset. Between about 23:25 and 00:35 UTC
  // the moved readings straddle household_5m's 24 h start_offset (TimescaleDB semantics: older
  // ranges wait for a manual refresh), so it is checked inside its window, then everywhere
  // after a manual refresh, like device_1m's 2 h.
  auto& m5 = *find_rollup("household_5m");
  EXPECT_EQ(mismatches(m5, "now() - interval '23 hours 50 minutes'"), 0);
  EXPECT_EQ(mismatches(*find_rollup("device_1h")), 0);
  auto& m1 = *find_rollup("device_1m");
  EXPECT_EQ(mismatches(m1, "now() - interval '2 hours'"), 0);
  auto now = std::stoll(db_->scalar("SELECT (extract(epoch from now()) * 1000000)::bigint"));
  refresh_range(*s_, m1, policy_for(m1), now - 2 * day, now);
  EXPECT_EQ(mismatches(m1), 0);
  refresh_range(*s_, m5, policy_for(m5), now - 2 * day, now);
  EXPECT_EQ(mismatches(m5), 0);
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
    // A ctid is unique only within one partition: (tableoid, ctid) names a row. Matching on
    // ctid alone also deleted the rows at the same place in the other day's partition while
    // the data spanned midnight UTC, older than start_offset, where no refresh may repair them.
    db_->exec("DELETE FROM telemetry WHERE (tableoid, ctid) IN (SELECT tableoid, ctid FROM "
              "telemetry WHERE ts > now() - interval '90 minutes' ORDER BY random() LIMIT 20)");
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

TEST_F(Rollups, WritesNamingAPartitionBelowTheWatermarkAreLoggedAndCorrected) {
  insert_random("30 hours", "0 seconds", 60, 0.81);
  refresh_all();
  for (auto& r : rollups())
    ASSERT_EQ(mismatches(r), 0) << r.name;
  ASSERT_EQ(realtime_mismatches(30), 0);
  ASSERT_EQ(db_->scalar("SELECT count(*) FROM rollup_invalidations WHERE NOT kept"), "0");
  // Straight into a partition, in the quarter hour below device_1h's watermark (so below
  // every watermark): an INSERT, an UPDATE and a DELETE that name the partition, never the
  // parent.
  auto& h1 = *find_rollup("device_1h");
  auto t = watermark(h1);
  auto part = partition_at(t - 1);
  auto from = format_rfc3339(std::max(floor_to(t - 1, day), t - 15 * minute));
  auto to = format_rfc3339(t);
  db_->exec("INSERT INTO " + part + " SELECT '" + from + "'::timestamptz + i * interval '37 "
            "seconds', d.id, d.household_id, 5000, 50 FROM devices d, generate_series(0, 30) i "
            "WHERE '" + from + "'::timestamptz + i * interval '37 seconds' < '" + to + "'");
  db_->exec("UPDATE " + part + " SET power_w = power_w * 3 WHERE device_id = md5('dev4')::uuid "
            "AND ts >= '" + from + "' AND ts < '" + to + "'");
  db_->exec("DELETE FROM " + part + " WHERE device_id = md5('dev9')::uuid AND ts >= '" + from +
            "' AND ts < '" + to + "'");
  EXPECT_EQ(log_rows("device_1m"), 4) << "one row per statement, two for the UPDATE (old, new)";
  auto committed = db_now();
  for (auto& r : rollups())
    EXPECT_GT(mismatches(r), 0) << r.name << ": the direct writes should show before a refresh";
  // The real-time read path serves the logged ranges from raw rows until a refresh lands
  // (issue 9 §3), so the answers already reflect the direct writes and fresh_as_of says so.
  EXPECT_EQ(realtime_mismatches(30), 0);
  series_query q{series_kind::device_power, db_->scalar("SELECT md5('dev4')::uuid"),
                 floor_to(t, hour) - hour, t, minute};
  EXPECT_GE(device_power(*s_, q, read_mode::rollups).meta.fresh_as_of, committed);
  refresh_all();
  EXPECT_EQ(mismatches(*find_rollup("household_5m")), 0);
  EXPECT_EQ(mismatches(h1), 0);
  // Up to 2 h back the 1 m policy repairs them; older minutes wait for a manual refresh, or
  // for a policy whose window reaches them (start_offset raised to 3 h takes the kept rows).
  auto& m1 = *find_rollup("device_1m");
  EXPECT_EQ(mismatches(m1, "now() - interval '2 hours'"), 0);
  refresh_cycle(*s_, m1, {3 * hour, minute, 6 * hour});
  EXPECT_EQ(mismatches(m1), 0);
  EXPECT_EQ(log_rows("device_1m"), 0);
  EXPECT_EQ(realtime_mismatches(30), 0);
  EXPECT_GE(device_power(*s_, q, read_mode::rollups).meta.fresh_as_of, committed);
}

TEST_F(Rollups, TruncatedPartitionsAreReflected) {
  // 64 h: the day before yesterday keeps rows at any time of day, so the final TRUNCATE of
  // the parent has something to log (an empty table logs nothing, rightly).
  insert_random("64 hours", "0 seconds", 60, 0.83);
  refresh_all();
  auto now = db_now();
  // Today's partition (inside every window) and yesterday's (outside the 1 m policy's 2 h).
  db_->exec("TRUNCATE " + partition_at(now));
  db_->exec("TRUNCATE " + partition_at(now - day));
  EXPECT_GE(log_rows("device_1h"), 1);  // 2, unless today has no rows yet (just past midnight)
  refresh_all();
  EXPECT_EQ(mismatches(*find_rollup("household_5m"), "now() - interval '24 hours'"), 0);
  EXPECT_EQ(mismatches(*find_rollup("device_1h")), 0);
  auto& m1 = *find_rollup("device_1m");
  EXPECT_EQ(mismatches(m1, "now() - interval '2 hours'"), 0);
  EXPECT_GT(log_rows("device_1m", "kept"), 0) << "yesterday waits for a manual refresh";
  refresh_range(*s_, m1, policy_for(m1), now - 3 * day, now);
  EXPECT_EQ(mismatches(m1), 0);
  // TRUNCATE of the parent is logged as well (its own trigger and every partition's).
  db_->exec("DELETE FROM rollup_invalidations");
  db_->exec("TRUNCATE telemetry");
  EXPECT_GE(log_rows("household_5m"), 1);
  refresh_all();
  EXPECT_EQ(mismatches(*find_rollup("device_1h")), 0);
  EXPECT_EQ(db_->scalar("SELECT count(*) FROM rollup_device_1h WHERE bucket >= now() - "
                        "interval '7 days'"),
            "0");
}

TEST_F(Rollups, DroppedAndDetachedPartitionsAreLogged) {
  insert_random("50 hours", "0 seconds", 120, 0.85);
  refresh_all();
  auto now = db_now();
  auto yesterday = partition_at(now - day), before = partition_at(now - 2 * day);
  ASSERT_NE(db_->scalar("SELECT count(*) FROM " + before), "0");
  // With the event trigger (the tests run as a superuser): logged in the DDL's transaction.
  db_->exec("ALTER TABLE telemetry DETACH PARTITION " + yesterday);
  db_->exec("DROP TABLE " + before);
  EXPECT_EQ(log_rows("device_1h"), 2);
  // The detached table lives on as a plain table: writes to it are no longer telemetry's.
  db_->exec("INSERT INTO " + yesterday + " SELECT * FROM " + yesterday + " LIMIT 5");
  EXPECT_EQ(log_rows("device_1h"), 2);
  refresh_all();
  EXPECT_EQ(mismatches(*find_rollup("device_1h")), 0);
  EXPECT_EQ(mismatches(*find_rollup("household_5m"), "now() - interval '24 hours'"), 0);
  // Without it (no superuser, or disabled) the partition keeper's check finds the change.
  db_->exec("ALTER EVENT TRIGGER joule_partitions_ddl DISABLE");
  db_->exec("DROP TABLE " + yesterday);  // no longer a partition: nothing to log
  auto today = partition_at(now);
  db_->exec("ALTER TABLE telemetry DETACH PARTITION " + today);
  auto logged_before = log_rows("device_1h");
  auto rep = ensure_partitions(*s_, day, 2, 1);
  db_->exec("ALTER EVENT TRIGGER joule_partitions_ddl ENABLE");
  EXPECT_GE(rep.synced, 1);
  EXPECT_EQ(log_rows("device_1h"), logged_before + 1);
  refresh_all();
  EXPECT_EQ(mismatches(*find_rollup("device_1h")), 0);
  EXPECT_EQ(mismatches(*find_rollup("device_1m"), "now() - interval '2 hours'"), 0);
  db_->exec("DROP TABLE " + today);
}

TEST_F(Rollups, PartitionsAttachedByOthersAreAdoptedAndTheirRowsLogged) {
  insert_random("3 hours", "0 seconds", 60, 0.86);
  refresh_all();
  // A table filled elsewhere and attached as the partition of 3 days ago (inside device_1h's
  // 7-day window). That day's partition exists already: detach and drop it first.
  auto now = db_now();
  auto name = partition_at(now - 3 * day);
  db_->exec("ALTER TABLE telemetry DETACH PARTITION " + name);
  db_->exec("DROP TABLE " + name);
  refresh_all();
  auto lo = format_rfc3339(floor_to(now - 3 * day, day));
  auto hi = format_rfc3339(floor_to(now - 3 * day, day) + day);
  db_->exec("CREATE TABLE side_load (LIKE telemetry)");
  db_->exec("INSERT INTO side_load SELECT '" + lo + "'::timestamptz + i * interval '1 hour', "
            "md5('dev1')::uuid, md5('hh1')::uuid, 100, 1 FROM generate_series(0, 23) i");
  db_->exec("ALTER TABLE telemetry ATTACH PARTITION side_load FOR VALUES FROM ('" + lo +
            "') TO ('" + hi + "')");
  EXPECT_EQ(log_rows("device_1h"), 1) << "the attached rows are logged";
  refresh_all();
  EXPECT_EQ(mismatches(*find_rollup("device_1h")), 0);
  // Its triggers are in place: a direct write is logged.
  db_->exec("DELETE FROM side_load WHERE ts = '" + lo + "'");
  EXPECT_EQ(log_rows("device_1h"), 1);
  refresh_all();
  EXPECT_EQ(mismatches(*find_rollup("device_1h")), 0);
}

TEST_F(Rollups, AnOldReadingIsRefreshedInBoundedBatches) {
  // A week of sparse history, materialised.
  insert_random("7 days", "0 seconds", 1800, 0.87);
  auto& r = *find_rollup("device_1h");
  refresh_policy_us p{7 * day, hour, day};  // max_batch: one day of raw time per transaction
  for (int i = 0; i < 20 && refresh_cycle(*s_, r, p).more_pending; ++i) {
  }
  ASSERT_EQ(mismatches(r), 0);
  // One statement with a 6-day-old reading and a current one: the log range spans six days.
  db_->exec("INSERT INTO telemetry VALUES (now() - interval '6 days', md5('dev1')::uuid, "
            "md5('hh1')::uuid, 777, 7), (now() - interval '2 minutes', md5('dev2')::uuid, "
            "md5('hh2')::uuid, 1, 1)");
  EXPECT_GT(mismatches(r), 0);
  std::vector<refresh_report> reps;
  do {
    reps.push_back(refresh_cycle(*s_, r, p));
  } while (reps.back().more_pending && reps.size() < 50);
  // Six days in transactions of at most one day each, each leaving the rest in the log.
  std::printf("6-day-old reading: %zu transactions, first %.1f h of raw time\n", reps.size(),
              static_cast<double>(reps[0].materialised_us) / hour);
  EXPECT_GE(reps.size(), 6u);
  EXPECT_LE(reps.size(), 9u);
  for (size_t i = 0; i < reps.size(); ++i) {
    EXPECT_LE(reps[i].materialised_us, day) << "cycle " << i;
    EXPECT_FALSE(reps[i].skipped);
    if (i + 1 < reps.size()) {
      EXPECT_TRUE(reps[i].more_pending) << "cycle " << i;
      EXPECT_GE(reps[i].invalidations_deferred, 1) << "cycle " << i;
    }
  }
  EXPECT_FALSE(reps.back().more_pending);
  EXPECT_EQ(reps.back().invalidations_deferred, 0);
  EXPECT_EQ(mismatches(r), 0);
  EXPECT_EQ(log_rows("device_1h"), 0);
}

TEST_F(Rollups, RangesKeptForAManualRefreshAreMergedNotRewritten) {
  insert_random("6 hours", "0 seconds", 60, 0.88);
  auto& r = *find_rollup("device_1m");
  cycle(r);
  // Twelve late statements older than the 2 h start_offset: ten in adjacent minutes around
  // 3 h ago (one island) and two around 5 h ago (another).
  for (int i = 0; i < 10; ++i)
    db_->exec("INSERT INTO telemetry VALUES (date_trunc('minute', now()) - interval '3 hours' + " +
              std::to_string(i) + " * interval '1 minute', md5('dev1')::uuid, md5('hh1')::uuid, "
              "10, 1)");
  for (int i = 0; i < 2; ++i)
    db_->exec("INSERT INTO telemetry VALUES (date_trunc('minute', now()) - interval '5 hours' + " +
              std::to_string(i) + " * interval '30 seconds', md5('dev2')::uuid, "
              "md5('hh2')::uuid, 10, 1)");
  EXPECT_EQ(log_rows("device_1m"), 12);
  auto rep = cycle(r);
  EXPECT_EQ(rep.invalidations_kept, 2);
  EXPECT_EQ(log_rows("device_1m"), 2);
  EXPECT_EQ(log_rows("device_1m", "kept"), 2);
  EXPECT_EQ(db_->scalar("SELECT hi - lo FROM rollup_invalidations WHERE rollup = 'device_1m' "
                        "ORDER BY lo DESC LIMIT 1"),
            "00:09:59.999999");
  // Cycles with nothing old to add leave the kept rows as they are (same row versions).
  auto versions = [&] {
    return db_->scalar("SELECT string_agg(ctid::text || xmin::text, ',' ORDER BY lo) FROM "
                       "rollup_invalidations WHERE rollup = 'device_1m'");
  };
  auto before = versions();
  for (int i = 0; i < 3; ++i) {
    db_->exec("INSERT INTO telemetry VALUES (now(), md5('dev3')::uuid, md5('hh3')::uuid, 1, 1)");
    EXPECT_EQ(cycle(r).invalidations_kept, 2);
  }
  EXPECT_EQ(versions(), before);
  // A new old write touching the first island extends it instead of adding a row.
  db_->exec("INSERT INTO telemetry VALUES (date_trunc('minute', now()) - interval '3 hours' + "
            "interval '10 minutes 5 seconds', md5('dev4')::uuid, md5('hh4')::uuid, 10, 1)");
  EXPECT_EQ(cycle(r).invalidations_kept, 2);
  EXPECT_EQ(db_->scalar("SELECT hi - lo FROM rollup_invalidations WHERE rollup = 'device_1m' "
                        "ORDER BY lo DESC LIMIT 1"),
            "00:10:59.999999");
  auto wrong = mismatches(r);
  EXPECT_GT(wrong, 0);
  // A manual refresh over the 5 h island takes that one; the other stays, still wrong.
  auto now = db_now();
  refresh_range(*s_, r, policy_for(r), now - 6 * hour, now - 4 * hour);
  EXPECT_EQ(log_rows("device_1m", "kept"), 1);
  EXPECT_GT(mismatches(r), 0);
  EXPECT_LT(mismatches(r), wrong);
  refresh_range(*s_, r, policy_for(r), now - 4 * hour, now);
  EXPECT_EQ(log_rows("device_1m"), 0);
  EXPECT_EQ(mismatches(r), 0);
}

TEST_F(Rollups, ARollupBuiltFromAnotherMergesItsStateAndFollowsItsRefreshes) {
  // A definition that is not in the shipped table: 5-minute device buckets from device_1m.
  config::rollup_def def{"device_5m", std::chrono::minutes(5), "device_1m", "device_id", true,
                         {std::chrono::hours(2), std::chrono::minutes(5), std::chrono::minutes(1)},
                         "ca_device_5m"};
  ASSERT_TRUE(config::validate({config::rollup_defs()[0], def}).empty());
  auto spec = make_spec(def);
  db_->exec("DROP TABLE IF EXISTS rollup_device_5m; CREATE TABLE rollup_device_5m (LIKE "
            "rollup_device_1m INCLUDING ALL); CREATE OR REPLACE VIEW ca_device_5m AS SELECT * "
            "FROM rollup_device_5m");
  ensure_rollup_schema(*s_, {spec});
  EXPECT_EQ(db_->scalar("SELECT source FROM rollup_state WHERE name = 'device_5m'"), "device_1m");
  auto& m1 = *find_rollup("device_1m");
  refresh_policy_us p5{2 * hour, 5 * minute, 6 * hour};
  insert_random("5 hours", "0 seconds", 20, 0.89);
  EXPECT_EQ(refresh_cycle(*s_, spec, p5).watermark_after, 0) << "nothing to merge yet";
  cycle(m1);
  refresh_cycle(*s_, spec, p5);
  EXPECT_EQ(mismatches(spec), 0);
  EXPECT_GT(std::stol(db_->scalar("SELECT count(*) FROM rollup_device_5m")), 24 * 50);
  EXPECT_LE(watermark(spec), watermark(m1));
  // A late write is logged for device_1m only; device_5m hears of it from device_1m's refresh.
  insert_random("70 minutes", "60 minutes", 5, 0.9);
  EXPECT_EQ(log_rows("device_5m"), 0);
  refresh_cycle(*s_, spec, p5);
  EXPECT_GT(mismatches(spec), 0) << "device_1m has not seen the late write yet";
  cycle(m1);
  EXPECT_EQ(log_rows("device_5m"), 1);
  refresh_cycle(*s_, spec, p5);
  EXPECT_EQ(mismatches(spec), 0);
  EXPECT_EQ(log_rows("device_5m"), 0);
  db_->exec("DELETE FROM rollup_state WHERE name = 'device_5m'; DROP VIEW ca_device_5m; "
            "DROP TABLE rollup_device_5m");
}

} // namespace
