// Settled energy parts held per household and step (issue 9): sliced by window, checked
// against a snapshot's versions and extended from its rollup rows as the watermark moves,
// always rendering exactly what a part read from PostgreSQL would.
#include <gtest/gtest.h>

#include "cache/settled_series.hpp"
#include "core/timefmt.hpp"
#include "db/analytics.hpp"
#include "http/render.hpp"
#include "http/settled_parts.hpp"

using namespace joule;

namespace {

constexpr std::int64_t five = 5 * 60 * micros_per_second;
constexpr std::int64_t hour = 12 * five;
const std::string household = "00000000-0000-0000-0000-000000000001";
constexpr std::int64_t t0 = 1'796'000'400'000'000;  // an hour boundary (µs)

// The elements render_energy writes for `points`: what a part must hold.
std::string rendered(const http::energy_points& points) {
  db::series_query q;
  q.id = household;
  db::series_result r;
  for (auto& [t, v] : points)
    r.series.push_back(db::point{t, v, std::nullopt});
  auto body = http::render_energy(q, "5m", r);
  auto at = body.find("\"series\":[") + 10;
  return body.substr(at, body.size() - 2 - at);
}

http::energy_points points(std::int64_t from, std::int64_t to, double base) {
  http::energy_points out;
  for (auto t = from; t < to; t += five)
    if ((t / five) % 7 != 3)  // a bucket without rows now and then
      out.emplace_back(t, (t / five) % 5 == 0 ? std::nullopt : std::optional<double>(base + t / five % 97 * 0.25));
  return out;
}

db::live_snapshot snapshot(std::int64_t household_lo, std::int64_t wm5, double base) {
  db::live_snapshot s;
  s.household_lo = household_lo;
  s.wm_household_5m = wm5;
  s.households_ok = true;
  for (auto& [t, v] : points(household_lo, wm5 + 2 * five, base)) {
    db::live_bucket b;
    b.start = t;
    b.energy_sum = v;
    s.household_5m[household].push_back(b);
  }
  return s;
}

} // namespace

TEST(SettledSeries, SlicesAreTheElementsOfTheirWindowAndParseBack) {
  auto pts = points(t0, t0 + 3 * hour, 10);
  auto part = http::settled_from_points(t0, t0 + 3 * hour, "", pts);
  ASSERT_TRUE(part);
  EXPECT_EQ(part->text, rendered(pts));
  http::energy_points inner(pts.begin() + 5, pts.begin() + 20);
  EXPECT_EQ(std::string(part->slice(inner.front().first, inner.back().first + 1)), rendered(inner));
  EXPECT_TRUE(part->slice(t0 + 10 * hour, t0 + 11 * hour).empty());
  cache::series_part back;
  ASSERT_TRUE(http::parse_energy_elements(part->text, back));
  EXPECT_EQ(back.elements, part->elements);
  cache::series_part bad;
  EXPECT_FALSE(http::parse_energy_elements("{\"t\":\"nope\",\"v\":1}", bad));
  EXPECT_FALSE(http::parse_energy_elements(part->text + "x", bad));
  EXPECT_FALSE(http::settled_from_points(t0, t0 + hour, "12:x", pts));
}

TEST(SettledSeries, AMovedWatermarkExtendsThePartFromTheSnapshotsRollupRows) {
  cache::settled_series store(100);
  const auto key = http::settled_series_key(household, five);
  auto wm = t0 + 20 * hour;
  auto read = points(t0, wm, 10);
  store.put(key, http::settled_from_points(t0, wm, "", read));
  // The same snapshot: the part as held.
  auto snap = snapshot(wm - hour, wm, 10);
  auto same = http::settled_from_memory(store, key, snap, household, five, t0, wm);
  ASSERT_TRUE(same);
  EXPECT_EQ(same->hi, wm);
  // Ten minutes later the watermark passed two buckets and the window slid by two: the part
  // is extended in memory and renders what a fresh read of the new window would.
  auto later = snapshot(wm - hour, wm + 2 * five, 10);
  auto grown = http::settled_from_memory(store, key, later, household, five, t0 + 2 * five, wm + 2 * five);
  ASSERT_TRUE(grown);
  auto expected = points(t0 + 2 * five, wm + 2 * five, 10);
  EXPECT_EQ(std::string(grown->slice(t0 + 2 * five, wm + 2 * five)), rendered(expected));
  EXPECT_EQ(store.find(key), grown) << "the extended part is stored";
  // A window asking for older buckets than the part holds must be read.
  EXPECT_FALSE(http::settled_from_memory(store, key, later, household, five, t0, wm + 2 * five));
}

TEST(SettledSeries, ARewrittenHourOrAGapTheSnapshotDoesNotCoverIsReadAgain) {
  cache::settled_series store(100);
  const auto key = http::settled_series_key(household, five);
  auto wm = t0 + 20 * hour;
  store.put(key, http::settled_from_points(t0, wm, std::to_string(t0 + 3 * hour) + ":4",
                                           points(t0, wm, 10)));
  auto snap = snapshot(wm - hour, wm, 10);
  // The snapshot does not name the version the part was read at: dropped, to be read again.
  EXPECT_FALSE(http::settled_from_memory(store, key, snap, household, five, t0, wm));
  EXPECT_FALSE(store.find(key));
  store.put(key, http::settled_from_points(t0, wm, std::to_string(t0 + 3 * hour) + ":4",
                                           points(t0, wm, 10)));
  snap.versions["household_5m"][t0 + 3 * hour] = 4;
  EXPECT_TRUE(http::settled_from_memory(store, key, snap, household, five, t0, wm));
  snap.versions["household_5m"][t0 + 7 * hour] = 1;  // a later rewrite of another hour
  auto stale = store.find(key);
  EXPECT_FALSE(http::settled_from_memory(store, key, snap, household, five, t0, wm));
  store.put(key, stale);
  // A window starting after the rewritten hours does not read them.
  snap.versions["household_5m"].erase(t0 + 7 * hour);
  snap.versions["household_5m"][t0 + 2 * hour] = 9;
  EXPECT_TRUE(http::settled_from_memory(store, key, snap, household, five, t0 + 3 * hour, wm));
  // The watermark moved further than the snapshot holds rows for: read again.
  auto far = snapshot(wm + hour, wm + hour + five, 10);
  far.versions = snap.versions;
  EXPECT_FALSE(http::settled_from_memory(store, key, far, household, five, t0 + 4 * hour, wm + hour));
  // Hourly steps sum rows: never extended in memory, only used as read.
  const auto hourly = http::settled_series_key(household, hour);
  store.put(hourly, http::settled_from_points(t0, wm, "", {}));
  auto later = snapshot(wm - hour, wm + hour, 10);
  EXPECT_TRUE(http::settled_from_memory(store, hourly, later, household, hour, t0, wm));
  EXPECT_FALSE(http::settled_from_memory(store, hourly, later, household, hour, t0 + hour, wm + hour));
}

TEST(SettledSeries, APartReadForAnOlderWindowDoesNotPushOutTheOneDashboardsExtend) {
  cache::settled_series store(100);
  const auto key = http::settled_series_key(household, five);
  auto wm = t0 + 20 * hour;
  auto polled = http::settled_from_points(t0, wm, "", points(t0, wm, 10));
  store.put(key, polled);
  http::keep_settled(store, key, http::settled_from_points(t0 - 5 * hour, wm - 4 * hour, "", {}));
  EXPECT_EQ(store.find(key), polled);
  auto newer = http::settled_from_points(t0 + hour, wm + five, "", points(t0 + hour, wm + five, 10));
  http::keep_settled(store, key, newer);
  EXPECT_EQ(store.find(key), newer);
}

TEST(SettledSeries, AnHourALateRangeRewroteIsRebuiltFromTheSnapshotWhenItHoldsItsRows) {
  cache::settled_series store(100);
  const auto key = http::settled_series_key(household, five);
  auto wm = t0 + 20 * hour;
  store.put(key, http::settled_from_points(t0, wm, "", points(t0, wm, 10)));
  // A refresh rewrote the hour before the watermark (a late reading): the snapshot holds its
  // rows (from two hours below the watermark), with other values than the part.
  auto snap = snapshot(wm - 2 * hour, wm, 50);
  snap.versions["household_5m"][wm - hour] = 3;
  auto rebuilt = http::settled_from_memory(store, key, snap, household, five, t0, wm);
  ASSERT_TRUE(rebuilt);
  auto expected = points(t0, wm - hour, 10);
  auto tail = points(wm - hour, wm, 50);
  expected.insert(expected.end(), tail.begin(), tail.end());
  EXPECT_EQ(std::string(rebuilt->slice(t0, wm)), rendered(expected));
  ASSERT_FALSE(rebuilt->versions.empty());
  EXPECT_EQ(rebuilt->versions.back(), std::make_pair(wm - hour, std::int64_t{3}));
  EXPECT_EQ(http::settled_from_memory(store, key, snap, household, five, t0, wm), rebuilt)
      << "stored, and now at the snapshot's versions";
  // A rewrite further back than the snapshot's rows: read again.
  snap.versions["household_5m"][wm - 5 * hour] = 1;
  EXPECT_FALSE(http::settled_from_memory(store, key, snap, household, five, t0, wm));
  EXPECT_FALSE(store.find(key));
}

TEST(SettledSeries, TheStoreIsBoundedAndEvictsByRange) {
  cache::settled_series store(32, 1 << 20);
  for (int i = 0; i < 100; ++i)
    store.put("household_5m:h" + std::to_string(i) + ":300000000",
              http::settled_from_points(t0, t0 + hour, "", points(t0, t0 + hour, i)));
  EXPECT_LE(store.size(), 32u);
  EXPECT_GE(store.size(), 16u);
  auto n = store.size();
  EXPECT_EQ(store.evict("household_5m:", t0 + hour, t0 + 2 * hour), 0u);
  EXPECT_EQ(store.evict("device_1m:", t0, t0 + hour), 0u);
  EXPECT_EQ(store.evict("household_5m:", t0 + five, t0 + 2 * five), n);
  EXPECT_EQ(store.size(), 0u);
}
