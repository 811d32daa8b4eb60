// Unaligned bounds against brute force, for every step and every way the watermarks can split
// a request between tiers (rollup_household_5m, rollup_device_1h, rollup_device_1m, raw
// tail). A request goes through the router's validation (which aligns start down and end up to
// the step) and the analytics queries; the answer must equal a GROUP BY over raw rows on the
// aligned buckets, whichever tiers serve it: no bucket before start, none running past end,
// each bucket the whole of [t, t + step).
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <optional>
#include <vector>

#include <pqxx/pqxx>

#include "core/timefmt.hpp"
#include "db/analytics.hpp"
#include "db/partitions.hpp"
#include "db/rollups.hpp"
#include "db/session.hpp"
#include "http/router.hpp"
#include "tests/support/route_params.hpp"
#include "tests/support/pg_test_db.hpp"

using namespace joule;

namespace {

constexpr std::int64_t second = micros_per_second;
constexpr std::int64_t minute = 60 * second;
constexpr std::int64_t hour = 60 * minute;
constexpr std::int64_t day = 24 * hour;
constexpr std::int64_t full = INT64_MAX;  // refreshed as far as the policy allows (now)

// Where each rollup's watermark sits, as an offset from the first hour of data; nullopt:
// never refreshed. `nudge` then moves every placed watermark that far down by hand, off the
// rollups' grids (the rollup stays materialised up to the aligned position).
struct split {
  const char* name;
  std::optional<std::int64_t> household_5m, device_1m, device_1h;
  std::int64_t nudge = 0;
};

// gtest prints a parameter in test names and failures: the split's name, not its bytes.
void PrintTo(const split& s, std::ostream* os) { *os << s.name; }

const split splits[] = {
    {"nothing_refreshed", {}, {}, {}},
    {"everything_refreshed", full, full, full},
    // Household 5 m inside an hour, device 1 m inside a 5 m bucket, device 1 h not at all.
    {"h5m_and_1m_no_1h", 3 * hour + 25 * minute, 5 * hour + 17 * minute, {}},
    // The reverse: no household 5 m; device 1 h above device 1 m.
    {"1h_above_1m_no_h5m", {}, 2 * hour + 43 * minute, 6 * hour},
    // Device 1 m above device 1 h, household 5 m above both.
    {"1m_above_1h", 7 * hour + 55 * minute, 6 * hour + 11 * minute, 3 * hour},
    {"only_1m", {}, 4 * hour + minute, {}},
    {"only_1h_and_h5m_low", hour + 5 * minute, {}, 7 * hour},
    // Watermarks set by hand off the grid: 20 s below 1 m, 5 m and 1 h boundaries.
    {"hand_set_off_grid", 4 * hour, 4 * hour, 4 * hour, 20 * second},
};

// Requests as [lo, hi) offsets from the first hour of data (which ends at 8 h 17 min).
const std::pair<std::int64_t, std::int64_t> ranges[] = {
    {-37 * minute, 9 * hour + 30 * minute},                             // all, empty edges
    {hour + 3 * minute, 3 * hour + 31 * minute},                        // the shape
    {2 * hour + 58 * minute + 30 * second, 5 * hour + 2 * minute + 10 * second},
    {4 * hour + second / 2, 4 * hour + second},                         // inside one bucket
    {5 * hour + 10 * minute, 7 * hour + 45 * minute - 1},               // 1 µs before a bound
    {3 * hour + 25 * minute, 6 * hour},                                 // aligned (control)
};

// `now` for top-devices, as offsets from the first hour of data: the window is the 24 hours
// ending with now's hour, so its end cuts the data at different watermarks.
const std::int64_t top_nows[] = {2 * hour, 5 * hour + 17 * minute, 8 * hour - 1,
                                 26 * hour + 3 * minute};

db::refresh_policy_us policy_for(const db::rollup_spec& r) {
  return {7 * day, r.width, 0};  // end_offset one bucket, as the default policies; no batching
}

bool near(const std::optional<double>& a, const std::optional<double>& b) {
  if (!a || !b)
    return !a && !b;
  return std::fabs(*a - *b) <= 1e-9 * (1 + std::fabs(*b));
}

std::string text(const std::optional<double>& v) {
  return v ? std::to_string(*v) : std::string("null");
}

class BucketBounds : public ::testing::TestWithParam<split> {
protected:
  static void SetUpTestSuite() {
    db_ = new test::pg_test_db("joule_test_bounds");
    db::session s{db_->url()};
    db::ensure_partitions(s, day, 2, 10);
    now_ = std::stoll(db_->scalar("SELECT (extract(epoch from now()) * 1000000)::bigint"));
    first_ = floor_to(now_, hour) - 10 * hour;
    // 3 households x 4 devices; readings every ~23 s with jitter (so 1 m buckets hold 2-3,
    // some with only NULL power), plus readings exactly on every 5 m boundary and 1 µs
    // before it, from first_ to first_ + 8 h 17 min.
    db_->exec("INSERT INTO devices (id, household_id) SELECT md5('bd' || i)::uuid, "
              "md5('bh' || (i % 3))::uuid FROM generate_series(1, 12) i");
    auto a = "'" + format_rfc3339(first_) + "'::timestamptz";
    db_->exec("SELECT setseed(0.37); INSERT INTO telemetry (ts, device_id, household_id, power_w, "
              "energy_wh) SELECT t, d.id, d.household_id, CASE WHEN random() < 0.1 THEN NULL "
              "ELSE round((random() * 3000)::numeric, 3) END, round((random() * 10)::numeric, 4) "
              "FROM devices d, LATERAL (SELECT " + a + " + g * interval '23 seconds' + random() * "
              "interval '20 seconds' t FROM generate_series(0, 1290) g UNION ALL SELECT " + a +
              " + k * interval '5 minutes' - e * interval '1 microsecond' FROM "
              "generate_series(0, 99) k, generate_series(0, 1) e) x WHERE t >= " + a +
              " AND t < " + a + " + interval '8 hours 17 minutes'");
  }
  static void TearDownTestSuite() {
    delete db_;
    db_ = nullptr;
  }

  void SetUp() override {
    s_ = std::make_unique<db::session>(db_->url());
    place(GetParam());
  }

  // Rollups rebuilt from nothing and refreshed up to the split's watermarks.
  void place(const split& sp) {
    db_->exec("TRUNCATE rollup_device_1m, rollup_household_5m, rollup_device_1h, "
              "rollup_invalidations; UPDATE rollup_state SET watermark = NULL");
    for (auto [name, at] : {std::pair{"household_5m", sp.household_5m},
                            std::pair{"device_1m", sp.device_1m},
                            std::pair{"device_1h", sp.device_1h}}) {
      if (!at)
        continue;
      auto& spec = *db::find_rollup(name);
      auto target = *at == full ? now_ : first_ + *at;
      auto rep = db::refresh_range(*s_, spec, policy_for(spec), first_ - hour, target);
      ASSERT_GT(rep.rows_written, 0) << name;
      if (*at != full)
        ASSERT_EQ(watermark(name), target) << name;
      else
        ASSERT_GE(watermark(name), first_ + 9 * hour) << name;
      if (sp.nudge)
        db_->exec("UPDATE rollup_state SET watermark = watermark - interval '" +
                  std::to_string(sp.nudge / second) + " seconds' WHERE name = '" + name + "'");
    }
  }

  std::int64_t watermark(const std::string& name) {
    return std::stoll(db_->scalar("SELECT (extract(epoch from watermark) * 1000000)::bigint "
                                  "FROM rollup_state WHERE name = '" + name + "'"));
  }

  static std::string household(int h) {
    return db_->scalar("SELECT md5('bh" + std::to_string(h) + "')::uuid");
  }
  static std::string device(int d) {
    return db_->scalar("SELECT md5('bd" + std::to_string(d) + "')::uuid");
  }

  // GROUP BY over raw rows on the aligned buckets of [start, end).
  std::map<std::int64_t, db::point> brute(bool power, const std::string& id, std::int64_t start,
                                          std::int64_t end, std::int64_t step) {
    pqxx::connection c{db_->url()};
    pqxx::nontransaction q{c};
    auto sql = std::string("SELECT (extract(epoch from date_bin($1::interval, ts, "
                           "'2000-01-01 00:00:00+00')) * 1000000)::bigint, ") +
               (power ? "avg(power_w), max(power_w)" : "sum(energy_wh), NULL::float8") +
               " FROM telemetry WHERE " + (power ? "device_id" : "household_id") +
               " = $2::uuid AND ts >= $3::timestamptz AND ts < $4::timestamptz GROUP BY 1";
    std::map<std::int64_t, db::point> out;
    for (auto row : q.exec_params(sql, std::to_string(step / second) + " seconds", id,
                                  format_rfc3339(start), format_rfc3339(end))) {
      db::point p;
      p.t = row[0].as<std::int64_t>();
      if (!row[1].is_null())
        p.v = row[1].as<double>();
      if (!row[2].is_null())
        p.max = row[2].as<double>();
      out[p.t] = p;
    }
    return out;
  }

  // The request through the router, as the API would parse it.
  db::series_query parse(bool power, const std::string& id, const std::string& step,
                         std::int64_t lo, std::int64_t hi) {
    auto path = power ? "/analytics/devices/" + id + "/power"
                      : "/analytics/households/" + id + "/energy";
    auto m = test::analytics_params(path + "?step=" + step + "&start=" + format_rfc3339(lo) +
                                    "&end=" + format_rfc3339(hi));
    auto r = power ? http::parse_power(m, now_, {}) : http::parse_energy(m, now_, {});
    if (auto* e = std::get_if<http::api_error>(&r)) {
      ADD_FAILURE() << e->code << ": " << e->message;
      return {};
    }
    return std::get<db::series_query>(r);
  }

  void check_series(bool power, const std::string& id, const std::string& step,
                    std::int64_t lo, std::int64_t hi) {
    SCOPED_TRACE(std::string(power ? "power " : "energy ") + id + " step=" + step + " start=" +
                 format_rfc3339(lo) + " end=" + format_rfc3339(hi));
    auto width = *http::parse_step(step);
    auto q = parse(power, id, step, lo, hi);
    ASSERT_EQ(q.start, floor_to(lo, width));
    ASSERT_EQ(q.end, ceil_to(hi, width));
    auto want = brute(power, id, q.start, q.end, width);
    for (auto mode : {db::read_mode::rollups, db::read_mode::raw}) {
      auto got = power ? db::device_power(*s_, q, mode) : db::household_energy(*s_, q, mode);
      ASSERT_TRUE(got.meta.found);
      EXPECT_EQ(got.series.size(), want.size()) << "raw mode: " << (mode == db::read_mode::raw);
      std::int64_t prev = INT64_MIN;
      for (auto& p : got.series) {
        EXPECT_GT(p.t, prev) << "ascending";
        prev = p.t;
        EXPECT_EQ(floor_to(p.t, width), p.t) << format_rfc3339(p.t) << " not on the step";
        EXPECT_GE(p.t, q.start) << format_rfc3339(p.t) << " starts before start";
        EXPECT_LE(p.t + width, q.end) << format_rfc3339(p.t) << " runs past end";
        auto it = want.find(p.t);
        if (it == want.end()) {
          ADD_FAILURE() << "bucket " << format_rfc3339(p.t) << " has no raw rows";
          continue;
        }
        EXPECT_TRUE(near(p.v, it->second.v))
            << format_rfc3339(p.t) << ": got " << text(p.v) << ", raw rows give "
            << text(it->second.v) << " (raw mode: " << (mode == db::read_mode::raw) << ")";
        EXPECT_TRUE(near(p.max, it->second.max))
            << format_rfc3339(p.t) << " max: got " << text(p.max) << ", raw rows give "
            << text(it->second.max);
      }
    }
  }

  static test::pg_test_db* db_;
  static std::int64_t now_, first_;
  std::unique_ptr<db::session> s_;
};

test::pg_test_db* BucketBounds::db_ = nullptr;
std::int64_t BucketBounds::now_ = 0;
std::int64_t BucketBounds::first_ = 0;

TEST_P(BucketBounds, EnergyEqualsRawGroupByOnAlignedBuckets) {
  for (auto& [lo, hi] : ranges)
    for (std::string step : {"5m", "1h"})
      for (int h : {0, 1, 2})
        check_series(false, household(h), step, first_ + lo, first_ + hi);
}

TEST_P(BucketBounds, PowerEqualsRawGroupByOnAlignedBuckets) {
  for (auto& [lo, hi] : ranges)
    for (std::string step : {"1m", "5m", "1h"})
      for (int d : {1, 6, 11})
        check_series(true, device(d), step, first_ + lo, first_ + hi);
}

TEST_P(BucketBounds, TopDevicesEqualsRawGroupByOverItsWholeHourWindow) {
  pqxx::connection c{db_->url()};
  pqxx::nontransaction tx{c};
  for (auto at : top_nows) {
    for (int h : {0, 1, 2}) {
      auto hid = household(h);
      auto m = test::analytics_params("/analytics/households/" + hid + "/top-devices?limit=100");
      auto parsed = http::parse_top(m, first_ + at, {});
      ASSERT_TRUE(std::holds_alternative<db::top_query>(parsed));
      auto q = std::get<db::top_query>(parsed);
      SCOPED_TRACE("top-devices " + hid + " window " + format_rfc3339(q.start) + " to " +
                   format_rfc3339(q.end));
      ASSERT_EQ(q.end, floor_to(first_ + at, hour) + hour);
      ASSERT_EQ(q.end - q.start, 24 * hour);
      std::map<std::string, double> want;
      for (auto row : tx.exec_params(
               "SELECT device_id::text, sum(energy_wh) FROM telemetry WHERE household_id = "
               "$1::uuid AND device_id IN (SELECT id FROM devices WHERE household_id = $1::uuid) "
               "AND ts >= $2::timestamptz AND ts < $3::timestamptz GROUP BY 1 "
               "HAVING sum(energy_wh) IS NOT NULL",
               hid, format_rfc3339(q.start), format_rfc3339(q.end)))
        want[row[0].as<std::string>()] = row[1].as<double>();
      ASSERT_FALSE(want.empty());
      for (auto mode : {db::read_mode::rollups, db::read_mode::raw}) {
        auto got = db::top_devices(*s_, q, mode);
        ASSERT_TRUE(got.meta.found);
        ASSERT_EQ(got.devices.size(), want.size());
        double prev = INFINITY;
        for (auto& d : got.devices) {
          EXPECT_LE(d.energy_wh, prev) << "highest first";
          prev = d.energy_wh;
          ASSERT_TRUE(want.count(d.device_id)) << d.device_id;
          EXPECT_TRUE(near(d.energy_wh, want[d.device_id]))
              << d.device_id << ": got " << d.energy_wh << ", raw rows give "
              << want[d.device_id] << " (raw mode: " << (mode == db::read_mode::raw) << ")";
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Splits, BucketBounds, ::testing::ValuesIn(splits),
                         [](const ::testing::TestParamInfo<split>& i) {
                           return std::string(i.param.name);
                         });

} // namespace
