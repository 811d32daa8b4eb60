// The incremental live tail (issue 9): a reader that folds only what committed since its last
// cycle must hold exactly what a whole read of the tail holds, after inserts out of `ts`
// order, updates and deletes inside the tail, concurrent transactions committing in another
// order than they started (and than their xids), writes inside a savepoint, and device_1m
// refreshes between cycles that consume log rows the reader has not seen (migration 0017: the
// reader finds them in live_tail_consumed and does not re-read the raw tail whole), unless
// it cannot know what it missed (a pruned batch, a log truncated or deleted by hand). The
// whole read itself equals brute force over raw rows
// (tests/http/live_test.cpp); here a direct GROUP BY checks one household too.
//
// Time of day: all data lies in the last 3 hours and every write is placed relative to now().
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <optional>

#include <pqxx/pqxx>

#include "core/timefmt.hpp"
#include "db/live_tail.hpp"
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

bool near(const std::optional<double>& a, const std::optional<double>& b) {
  if (!a || !b)
    return !a && !b;
  return std::fabs(*a - *b) <= 1e-9 * (1 + std::fabs(*b));
}

using series = std::unordered_map<std::string, std::vector<live_bucket>>;

// Empty lists are the same as none.
std::string diff(const char* what, const series& a, const series& b) {
  auto count = [](const series& s) {
    std::size_t n = 0;
    for (auto& [k, v] : s)
      n += v.empty() ? 0 : 1;
    return n;
  };
  if (count(a) != count(b))
    return std::string(what) + ": " + std::to_string(count(a)) + " vs " +
           std::to_string(count(b)) + " keys";
  for (auto& [k, v] : a) {
    if (v.empty())
      continue;
    auto it = b.find(k);
    if (it == b.end())
      return std::string(what) + ": key " + k + " missing";
    auto& w = it->second;
    if (v.size() != w.size())
      return std::string(what) + ": " + k + " has " + std::to_string(v.size()) + " vs " +
             std::to_string(w.size()) + " buckets";
    for (std::size_t i = 0; i < v.size(); ++i)
      if (v[i].start != w[i].start || !near(v[i].energy_sum, w[i].energy_sum) ||
          !near(v[i].power_sum, w[i].power_sum) || v[i].power_count != w[i].power_count ||
          !near(v[i].power_max, w[i].power_max))
        return std::string(what) + ": " + k + " differs at " + format_rfc3339(v[i].start);
  }
  return {};
}

class LiveTailIncremental : public ::testing::Test {
protected:
  static void SetUpTestSuite() { db_ = new test::pg_test_db("joule_test_live_tail"); }
  static void TearDownTestSuite() {
    delete db_;
    db_ = nullptr;
  }

  void SetUp() override {
    s_ = std::make_unique<session>(db_->url());
    check_ = std::make_unique<session>(db_->url());
    db_->exec("TRUNCATE telemetry, devices, rollup_device_1m, rollup_household_5m, "
              "rollup_device_1h, rollup_invalidations; UPDATE rollup_state SET watermark = NULL");
    ensure_partitions(*s_, day, 2, 2);
    // 4 households x 3 devices, one reading per ~20 s over the last 3 h.
    db_->exec("INSERT INTO devices (id, household_id) SELECT md5('td' || i)::uuid, "
              "md5('th' || (i % 4))::uuid FROM generate_series(1, 12) i");
    db_->exec("SELECT setseed(0.7); INSERT INTO telemetry (ts, device_id, household_id, power_w, "
              "energy_wh) SELECT t + random() * interval '15 seconds', d.id, d.household_id, "
              "random() * 3000, random() * 10 FROM devices d, generate_series(now() - "
              "interval '3 hours', now() - interval '20 seconds', interval '20 seconds') t");
    refresh_all();
  }

  void refresh_all() {
    for (auto& r : rollups()) {
      refresh_policy_us p{day, r.width, 0};
      for (int i = 0; i < 100 && refresh_cycle(*s_, r, p).more_pending; ++i) {
      }
    }
  }

  // One device_1m refresh, as another instance would run it (its own connection).
  static refresh_report refresh_1m() {
    session other{db_->url()};
    return refresh_cycle(other, *find_rollup("device_1m"), refresh_policy_us{day, minute, 0});
  }

  // Moves the device_1m watermark `back` into the past (its rollup rows above it dropped: the
  // raw rows are the tail again), so that the next refresh surely moves it on.
  static void rewind_1m(const std::string& back) {
    db_->exec("BEGIN; UPDATE rollup_state SET watermark = watermark - interval '" + back +
              "' WHERE name = 'device_1m'; DELETE FROM rollup_device_1m WHERE bucket >= (SELECT "
              "watermark FROM rollup_state WHERE name = 'device_1m'); COMMIT");
  }

  // Energy of every household's live 1 min buckets equals brute force.
  void expect_brute_force() const {
    for (int h = 0; h < 4; ++h)
      EXPECT_NEAR(held_energy_1m(h), brute_energy_1m(h, last_.household_1m_lo), 1e-6) << h;
  }

  // A reading of device `d` (1-12) at now() - `ago`.
  static std::string insert_sql(int d, const std::string& ago, double power = 1000,
                                double energy = 1) {
    return "INSERT INTO telemetry (ts, device_id, household_id, power_w, energy_wh) SELECT "
           "now() - interval '" + ago + "', id, household_id, " + std::to_string(power) + ", " +
           std::to_string(energy) + " FROM devices WHERE id = md5('td" + std::to_string(d) +
           "')::uuid";
  }

  // One incremental cycle compared with a whole read of the same database state (retried
  // when the two straddle a 5 min boundary: their look-back windows then differ).
  ::testing::AssertionResult cycle_equals_whole() { return cycle_equals_whole(reader_); }
  ::testing::AssertionResult cycle_equals_whole(live_tail_reader& reader) {
    for (int attempt = 0; attempt < 3; ++attempt) {
      auto inc = reader.cycle(*s_);
      auto whole = read_live_tail(*check_);
      if (whole.device_lo != inc.device_lo || whole.household_lo != inc.household_lo ||
          whole.household_1m_lo != inc.household_1m_lo)
        continue;
      if (inc.devices_ok != whole.devices_ok || inc.households_ok != whole.households_ok)
        return ::testing::AssertionFailure() << "flags differ";
      for (auto d : {diff("device_1m", inc.device_1m, whole.device_1m),
                     diff("household_1m", inc.household_1m, whole.household_1m),
                     diff("household_5m", inc.household_5m, whole.household_5m)})
        if (!d.empty())
          return ::testing::AssertionFailure() << d;
      if (inc.bucket_count != whole.bucket_count)
        return ::testing::AssertionFailure() << "bucket count " << inc.bucket_count << " vs "
                                             << whole.bucket_count;
      last_ = std::move(inc);
      return ::testing::AssertionSuccess();
    }
    return ::testing::AssertionFailure() << "look-back moved three times";
  }

  // Energy of household `h` (md5('th' || h)) in the live 1 min buckets from `lo` on, brute
  // force over raw rows.
  static double brute_energy_1m(int h, std::int64_t lo) {
    return std::stod(db_->scalar(
        "SELECT coalesce(sum(energy_wh), 0) FROM telemetry WHERE household_id = md5('th" +
        std::to_string(h) + "')::uuid AND ts >= '" + format_rfc3339(lo) + "'"));
  }
  double held_energy_1m(int h) const {
    auto id = db_->scalar("SELECT md5('th" + std::to_string(h) + "')::uuid::text");
    double sum = 0;
    if (auto it = last_.household_1m.find(id); it != last_.household_1m.end())
      for (auto& b : it->second)
        sum += b.energy_sum.value_or(0);
    return sum;
  }

  static test::pg_test_db* db_;
  std::unique_ptr<session> s_, check_;
  live_tail_reader reader_;
  live_snapshot last_;
};

test::pg_test_db* LiveTailIncremental::db_ = nullptr;

TEST_F(LiveTailIncremental, FoldsOnlyNewStatementsAndEqualsAWholeRead) {
  ASSERT_TRUE(cycle_equals_whole());
  EXPECT_TRUE(reader_.last().full_raw) << "the first cycle reads the whole tail";
  ASSERT_TRUE(last_.devices_ok);
  // Nothing written: nothing read but the bookkeeping.
  ASSERT_TRUE(cycle_equals_whole());
  EXPECT_FALSE(reader_.last().full_raw);
  EXPECT_EQ(reader_.last().raw_rows, 0u);
  EXPECT_EQ(reader_.last().statements, 0u);

  // Inserts out of ts order, one multi-row statement and several single ones.
  db_->exec(insert_sql(1, "2 seconds") + "; " + insert_sql(2, "50 seconds", 500, 3));
  db_->exec("INSERT INTO telemetry (ts, device_id, household_id, power_w, energy_wh) "
            "SELECT now() - interval '1 second' * (d.n * 3), d.id, d.household_id, 10 * d.n, d.n "
            "FROM (SELECT id, household_id, row_number() OVER (ORDER BY id) AS n FROM devices) d");
  ASSERT_TRUE(cycle_equals_whole());
  EXPECT_FALSE(reader_.last().full_raw);
  EXPECT_EQ(reader_.last().statements, 3u);
  EXPECT_GT(reader_.last().raw_rows, 0u);
  EXPECT_LE(reader_.last().raw_rows, 14u) << "only the new rows' buckets";
  EXPECT_NEAR(held_energy_1m(1), brute_energy_1m(1, last_.household_1m_lo), 1e-6);

  // An update and a delete inside the tail re-read the minutes they name.
  db_->exec("UPDATE telemetry SET energy_wh = energy_wh + 100, power_w = 9999 "
            "WHERE device_id = md5('td1')::uuid AND ts >= now() - interval '30 seconds'");
  ASSERT_TRUE(cycle_equals_whole());
  EXPECT_GE(reader_.last().reread_ranges, 1u);
  db_->exec("DELETE FROM telemetry WHERE device_id = md5('td2')::uuid "
            "AND ts >= now() - interval '55 seconds'");
  ASSERT_TRUE(cycle_equals_whole());
  EXPECT_NEAR(held_energy_1m(2), brute_energy_1m(2, last_.household_1m_lo), 1e-6);
  // Inserted and updated in one transaction: the re-read wins over the fold.
  db_->exec("BEGIN; " + insert_sql(3, "4 seconds", 100, 7) +
            "; UPDATE telemetry SET energy_wh = 70 WHERE device_id = md5('td3')::uuid AND ts >= "
            "now() - interval '5 seconds'; COMMIT");
  ASSERT_TRUE(cycle_equals_whole());
  EXPECT_NEAR(held_energy_1m(3), brute_energy_1m(3, last_.household_1m_lo), 1e-6);
}

TEST_F(LiveTailIncremental, ConcurrentTransactionsCommittingOutOfOrder) {
  ASSERT_TRUE(cycle_equals_whole());
  pqxx::connection a{db_->url()}, b{db_->url()}, c{db_->url()};
  // A takes its xid first and writes the newest reading; B starts later, writes an older one
  // and commits first; C writes inside a savepoint (its rows carry a subtransaction's xid).
  pqxx::work ta{a};
  ta.exec(insert_sql(4, "1 second", 111, 11));
  pqxx::work tb{b};
  tb.exec(insert_sql(5, "40 seconds", 222, 22));
  pqxx::work tc{c};
  tc.exec("SAVEPOINT s1");
  tc.exec(insert_sql(6, "3 seconds", 333, 33));
  tc.exec("RELEASE SAVEPOINT s1");
  tc.exec("SAVEPOINT s2");
  tc.exec(insert_sql(6, "6 seconds", 444, 44));
  tc.exec("ROLLBACK TO SAVEPOINT s2");
  tb.commit();
  ASSERT_TRUE(cycle_equals_whole());
  EXPECT_EQ(reader_.last().statements, 1u) << "B only: A and C are still open";
  // A (the older xid, the newer ts) commits after the reader has seen B.
  ta.commit();
  ASSERT_TRUE(cycle_equals_whole());
  EXPECT_FALSE(reader_.last().full_raw);
  EXPECT_EQ(reader_.last().statements, 1u);
  tc.commit();
  ASSERT_TRUE(cycle_equals_whole());
  EXPECT_FALSE(reader_.last().full_raw);
  for (int h = 0; h < 4; ++h)
    EXPECT_NEAR(held_energy_1m(h), brute_energy_1m(h, last_.household_1m_lo), 1e-6) << h;
  // The rolled-back savepoint's reading is nowhere.
  EXPECT_EQ(db_->scalar("SELECT count(*) FROM telemetry WHERE power_w = 444"), "0");
}

// VACUUM FULL (or CLUSTER) on the log gives every row a new ctid but keeps its xmin: the
// rows are not new statements, and their inserts must not be folded a second time.
TEST_F(LiveTailIncremental, AVacuumFullOfTheLogFoldsNothingTwice) {
  // Padding in front of the new log rows (another rollup's, two days old), dropped before
  // the VACUUM FULL: the rows after it are sure to move.
  db_->exec("INSERT INTO rollup_invalidations (rollup, lo, hi) SELECT 'household_5m', "
            "now() - interval '2 days', now() - interval '2 days' FROM generate_series(1, 5)");
  ASSERT_TRUE(cycle_equals_whole());
  db_->exec(insert_sql(11, "3 seconds", 90, 9));
  db_->exec(insert_sql(12, "5 seconds", 95, 4));
  ASSERT_TRUE(cycle_equals_whole());
  EXPECT_EQ(reader_.last().statements, 2u);
  const std::string where = "rollup = 'device_1m' AND inserted";
  auto before = db_->scalar("SELECT string_agg(ctid::text, ',' ORDER BY xmin::text::bigint) "
                            "FROM rollup_invalidations WHERE " + where);
  db_->exec("DELETE FROM rollup_invalidations WHERE rollup = 'household_5m' AND "
            "hi < now() - interval '1 day'");
  db_->exec("VACUUM FULL rollup_invalidations");
  auto after = db_->scalar("SELECT string_agg(ctid::text, ',' ORDER BY xmin::text::bigint) "
                           "FROM rollup_invalidations WHERE " + where);
  ASSERT_NE(before, after) << "the log rows did not move: the test proves nothing";
  ASSERT_TRUE(cycle_equals_whole());
  EXPECT_FALSE(reader_.last().full_raw);
  EXPECT_EQ(reader_.last().statements, 0u);
  for (int h = 0; h < 4; ++h)
    EXPECT_NEAR(held_energy_1m(h), brute_energy_1m(h, last_.household_1m_lo), 1e-6) << h;
}

TEST_F(LiveTailIncremental, ARefreshBetweenCyclesDoesNotRereadTheRawTail) {
  ASSERT_TRUE(cycle_equals_whole());
  // Both above the old watermark (at most 2 min ago, floored): the refresh keeps both.
  db_->exec(insert_sql(7, "50 seconds", 50, 5) + "; " + insert_sql(8, "2 seconds", 60, 6));
  // The refresh consumes the log rows of both writes before the reader saw them.
  refresh_all();
  ASSERT_TRUE(cycle_equals_whole());
  EXPECT_FALSE(reader_.last().full_raw);
  EXPECT_EQ(reader_.last().statements, 2u);
  EXPECT_EQ(reader_.last().consumed, 2u);
  expect_brute_force();
  ASSERT_TRUE(cycle_equals_whole());
  EXPECT_FALSE(reader_.last().full_raw);
  EXPECT_EQ(reader_.last().statements, 0u);
  // A refresh with nothing the reader missed (it saw this write's log row) is no news either.
  db_->exec(insert_sql(9, "1 second", 65, 2));
  ASSERT_TRUE(cycle_equals_whole());
  EXPECT_EQ(reader_.last().statements, 1u);
  refresh_all();
  ASSERT_TRUE(cycle_equals_whole());
  EXPECT_FALSE(reader_.last().full_raw);
  EXPECT_EQ(reader_.last().statements, 0u);
  EXPECT_EQ(reader_.last().raw_rows, 0u);
  expect_brute_force();
  // A device moved to another household moves its rollup share with it.
  db_->exec("UPDATE devices SET household_id = md5('th0')::uuid WHERE id = md5('td1')::uuid");
  ASSERT_TRUE(cycle_equals_whole());
}

// The watermark moves on between two cycles, and the refresh consumed writes the reader never
// saw: one straddling the new watermark (only its rows above it are raw), an update and a
// delete above it (their minutes are re-read), a late one far below it (of no use to the
// tail: not kept).
TEST_F(LiveTailIncremental, ARefreshMovingTheWatermarkFoldsWhatItConsumedAboveIt) {
  rewind_1m("4 minutes");
  ASSERT_TRUE(cycle_equals_whole());
  EXPECT_TRUE(reader_.last().full_raw);
  const auto wm_before = last_.wm_device_1m;
  ASSERT_TRUE(wm_before);
  db_->exec("INSERT INTO telemetry (ts, device_id, household_id, power_w, energy_wh) SELECT "
            "now() - interval '1 second' * s, id, household_id, s, 0.5 * s FROM devices, "
            "(VALUES (150), (100), (3)) v(s) WHERE id IN (md5('td1')::uuid, md5('td2')::uuid)");
  db_->exec("UPDATE telemetry SET energy_wh = energy_wh * 3 WHERE device_id = md5('td3')::uuid "
            "AND ts >= now() - interval '40 seconds'");
  db_->exec("DELETE FROM telemetry WHERE device_id = md5('td4')::uuid AND ts >= now() - "
            "interval '25 seconds'");
  db_->exec(insert_sql(5, "2 hours 30 minutes", 1, 1));
  auto rep = refresh_1m();
  ASSERT_FALSE(rep.skipped);
  // Log rows: the update logs its old and its new range (two rows).
  ASSERT_EQ(rep.invalidations_consumed, 5);
  EXPECT_EQ(db_->scalar("SELECT cardinality(xids) FROM live_tail_consumed c JOIN rollup_state s "
                        "ON s.name = c.rollup AND s.consumed_batch = c.batch"),
            "4")
      << "the late write's log row lies wholly below the old watermark: not kept";
  ASSERT_TRUE(cycle_equals_whole());
  EXPECT_FALSE(reader_.last().full_raw);
  ASSERT_TRUE(last_.wm_device_1m);
  EXPECT_GT(*last_.wm_device_1m, *wm_before) << "the watermark moved";
  EXPECT_EQ(reader_.last().statements, 4u);
  EXPECT_EQ(reader_.last().consumed, 4u);
  EXPECT_GE(reader_.last().reread_ranges, 1u);
  expect_brute_force();
  ASSERT_TRUE(cycle_equals_whole());
  EXPECT_FALSE(reader_.last().full_raw);
  EXPECT_EQ(reader_.last().statements, 0u);
}

// Transactions committing out of xid order, a savepoint, one statement the reader saw and
// three it never saw, all consumed by another instance's refreshes (two batches) before the
// next cycle. A second instance's reader, last run before all of it, catches up as well.
TEST_F(LiveTailIncremental, RefreshesConsumingStatementsCommittedAfterTheSnapshotLoseNone) {
  rewind_1m("2 minutes");
  live_tail_reader second;
  ASSERT_TRUE(cycle_equals_whole(second));
  ASSERT_TRUE(cycle_equals_whole());
  pqxx::connection a{db_->url()}, c{db_->url()};
  pqxx::work ta{a};
  ta.exec(insert_sql(4, "1 second", 111, 11));  // the older xid, committed last
  db_->exec(insert_sql(5, "2 seconds", 222, 22));
  pqxx::work tc{c};
  tc.exec("SAVEPOINT s1");
  tc.exec(insert_sql(6, "3 seconds", 333, 33));
  tc.exec("RELEASE SAVEPOINT s1");
  tc.exec("SAVEPOINT s2");
  tc.exec(insert_sql(6, "6 seconds", 444, 44));
  tc.exec("ROLLBACK TO SAVEPOINT s2");
  ASSERT_TRUE(cycle_equals_whole());
  EXPECT_EQ(reader_.last().statements, 1u) << "the reader sees device 5's insert only";
  tc.commit();
  ASSERT_FALSE(refresh_1m().skipped);
  ta.commit();
  db_->exec("UPDATE telemetry SET power_w = 7 WHERE device_id = md5('td5')::uuid AND ts >= "
            "now() - interval '10 seconds'");
  ASSERT_FALSE(refresh_1m().skipped);
  ASSERT_EQ(db_->scalar("SELECT count(*) FROM rollup_invalidations WHERE rollup = 'device_1m' "
                        "AND hi >= now() - interval '1 minute'"),
            "0")
      << "the refreshes consumed every log row";
  ASSERT_TRUE(cycle_equals_whole());
  EXPECT_FALSE(reader_.last().full_raw);
  // Log rows: C's, A's and the update's two (old and new range); device 5's insert was seen.
  EXPECT_EQ(reader_.last().statements, 4u);
  EXPECT_EQ(reader_.last().consumed, 4u);
  expect_brute_force();
  EXPECT_EQ(db_->scalar("SELECT count(*) FROM telemetry WHERE power_w = 444"), "0");
  ASSERT_TRUE(cycle_equals_whole(second));
  EXPECT_FALSE(second.last().full_raw);
  EXPECT_EQ(second.last().statements, 5u) << "device 5's insert too: it never saw it";
  EXPECT_EQ(second.last().consumed, 5u);
}

// What the reader cannot know about makes it re-read the raw tail whole: a batch pruned
// before it saw it (a tail stalled longer than the retention), the log truncated or its rows
// deleted by hand. Every such cycle still equals a whole read.
TEST_F(LiveTailIncremental, APrunedBatchOrALogRemovedByHandMeansOneWholeRead) {
  ASSERT_TRUE(cycle_equals_whole());
  db_->exec(insert_sql(7, "3 seconds", 10, 1));
  ASSERT_FALSE(refresh_1m().skipped);
  // The batch grows old (without counting as a removal by hand), and the next refresh prunes
  // it.
  db_->exec("BEGIN; SET LOCAL joule.log_consumer = 'on'; UPDATE live_tail_consumed SET "
            "consumed_at = consumed_at - interval '11 minutes'; COMMIT");
  const auto pruned = db_->scalar("SELECT consumed_pruned FROM rollup_state WHERE name = "
                                  "'device_1m'");
  ASSERT_FALSE(refresh_1m().skipped);
  ASSERT_NE(db_->scalar("SELECT consumed_pruned FROM rollup_state WHERE name = 'device_1m'"),
            pruned);
  ASSERT_TRUE(cycle_equals_whole());
  EXPECT_TRUE(reader_.last().full_raw) << "the reader missed a pruned batch";
  expect_brute_force();
  ASSERT_TRUE(cycle_equals_whole());
  EXPECT_FALSE(reader_.last().full_raw);

  db_->exec(insert_sql(8, "2 seconds", 20, 2));
  db_->exec("TRUNCATE rollup_invalidations");
  ASSERT_TRUE(cycle_equals_whole());
  EXPECT_TRUE(reader_.last().full_raw) << "the log was truncated";
  expect_brute_force();

  db_->exec(insert_sql(9, "1 second", 30, 3));
  db_->exec("DELETE FROM rollup_invalidations WHERE rollup = 'device_1m'");
  ASSERT_TRUE(cycle_equals_whole());
  EXPECT_TRUE(reader_.last().full_raw) << "device_1m log rows were deleted by hand";
  expect_brute_force();

  // Another rollup's log rows deleted by hand are no concern of the tail.
  db_->exec(insert_sql(10, "1 second", 40, 4));
  db_->exec("DELETE FROM rollup_invalidations WHERE rollup = 'household_5m'");
  ASSERT_TRUE(cycle_equals_whole());
  EXPECT_FALSE(reader_.last().full_raw);
  EXPECT_EQ(reader_.last().statements, 1u);
  expect_brute_force();
}

} // namespace

namespace {

TEST_F(LiveTailIncremental, AFailedCycleForgetsEverythingAndStartsOverWithAWholeRead) {
  ASSERT_TRUE(cycle_equals_whole());
  db_->exec(insert_sql(9, "3 seconds", 70, 7));
  // The reader's connection dies mid-way: the cycle throws, and nothing half-applied survives.
  session doomed{db_->url()};
  db_->exec("SELECT pg_terminate_backend(" + std::to_string(doomed.conn().backendpid()) + ")");
  EXPECT_ANY_THROW(reader_.cycle(doomed));
  db_->exec(insert_sql(10, "2 seconds", 80, 8));
  ASSERT_TRUE(cycle_equals_whole());
  EXPECT_TRUE(reader_.last().full_raw);
  for (int h = 0; h < 4; ++h)
    EXPECT_NEAR(held_energy_1m(h), brute_energy_1m(h, last_.household_1m_lo), 1e-6) << h;
}

} // namespace
