// The per-snapshot live answer memo (live.answer_memo_max_bytes) over real HTTP with a real
// PostgreSQL: polls of the same window on the same snapshot share one computed body
// (byte-identical, counted by joule_live_answer_memo_hits_total), a new snapshot shows new
// readings (the memo never serves an older snapshot's answer), a restricted token gets the
// same 404 for another household's subjects as without the memo even when an admin's answer
// is memoized, and 0 disables it.
#include <gtest/gtest.h>

#include <thread>

#include "core/timefmt.hpp"
#include "db/session.hpp"
#include "db/tokens.hpp"
#include "tests/support/api_fixture.hpp"

using namespace joule;
using namespace joule::test;

namespace {

const std::string hits_series = "joule_live_answer_memo_hits_total";

struct answer {
  int status = 0;
  std::string x_cache, body;
  std::int64_t fresh = 0;
};

answer fetch(std::uint16_t port, const std::string& target, const std::string& token = {}) {
  auto r = token.empty() ? http_get(port, target)
                         : http_request_with(port, "GET", target, "", bearer(token));
  answer a;
  a.status = r.status;
  a.body = r.body;
  a.x_cache = r.headers.count("x-cache") ? r.headers.at("x-cache") : "";
  if (r.status == 200)
    a.fresh = *parse_rfc3339(parse_json(r.body)["fresh_as_of"].GetString());
  return a;
}

std::string energy_of(int h) { return "/analytics/households/" + household_id(h) + "/energy"; }
std::string power_of(int d) { return "/analytics/devices/" + device_id(d) + "/power?step=1m"; }
std::string top_of(int h) {
  return "/analytics/households/" + household_id(h) + "/top-devices?limit=4";
}

class LiveAnswerMemo : public ::testing::Test {
protected:
  static void SetUpTestSuite() {
    db_ = new pg_test_db("joule_test_live_memo");
    seed_fleet(*db_, 3, 4, 26, 60);
    app_ = new app(settings(db_->url()));
    app_->start();
    wait_live(app_->port());
  }
  static void TearDownTestSuite() {
    delete app_;
    delete db_;
  }

  static config::settings settings(const std::string& url) {
    auto s = test_settings(url, "");
    // Long enough that two polls in a row usually fall on the same snapshot.
    s.live_interval = std::chrono::milliseconds(1000);
    return s;
  }
  static void wait_live(std::uint16_t port, const std::string& token = {}) {
    ASSERT_TRUE(wait_live_and_rollups(*db_, port, token)) << "live tail never published";
  }
  static std::int64_t db_now() {
    return std::stoll(db_->scalar("SELECT (extract(epoch from clock_timestamp()) * 1e6)::bigint"));
  }
  static std::string make_token(const std::string& scopes, std::vector<std::string> households) {
    db::session sess{db_->url()};
    db::token_spec spec;
    std::string bad;
    spec.scopes = *auth::parse_scopes(scopes, bad);
    spec.households = std::move(households);
    spec.name = "live memo " + scopes;
    return db::create_token(sess, spec).secret;
  }

  static pg_test_db* db_;
  static app* app_;
};

pg_test_db* LiveAnswerMemo::db_ = nullptr;
app* LiveAnswerMemo::app_ = nullptr;

TEST_F(LiveAnswerMemo, APollOnTheSameSnapshotIsTheSameBodyWithoutComputingIt) {
  const auto port = app_->port();
  for (const auto& target : {energy_of(1), power_of(2), top_of(1)}) {
    bool paired = false;
    // Two polls in a row fall on one snapshot (1 s) nearly always; retry across a boundary.
    for (int i = 0; i < 10 && !paired; ++i) {
      auto a = fetch(port, target);
      ASSERT_EQ(a.status, 200) << target << ": " << a.body;
      const auto hits = metric(port, hits_series);
      auto b = fetch(port, target);
      ASSERT_EQ(b.status, 200) << target << ": " << b.body;
      if (a.fresh != b.fresh)
        continue;  // the tail published a snapshot in between
      paired = true;
      EXPECT_EQ(a.body, b.body) << target;
      EXPECT_EQ(b.x_cache, "hit") << target;
      EXPECT_EQ(metric(port, hits_series) - hits, 1) << target << ": served from the memo";
    }
    EXPECT_TRUE(paired) << target << ": never two polls on one snapshot";
  }
  // Another window of the same subject is another answer, not the memoized one.
  auto day = fetch(port, energy_of(1));
  auto hourly = fetch(port, energy_of(1) + "?step=1h");
  ASSERT_EQ(hourly.status, 200) << hourly.body;
  EXPECT_NE(day.body, hourly.body);
  EXPECT_NE(hourly.body.find("\"step\":\"1h\""), std::string::npos) << hourly.body;
}

TEST_F(LiveAnswerMemo, ANewReadingShowsOnTheNextSnapshotDespiteTheMemo) {
  const auto port = app_->port();
  // Memoize household 3's answers on the current snapshot first.
  for (int i = 0; i < 3; ++i)
    for (const auto& t : {energy_of(3), power_of(10), top_of(3)})
      ASSERT_EQ(fetch(port, t).status, 200);
  // Far above the seeded values (power <= 2000 W, energy <= 5 Wh per reading).
  db_->exec("INSERT INTO telemetry VALUES (now(), '" + device_id(10) + "', '" + household_id(3) +
            "', 1e6, 8765.25)");
  const auto committed = db_now();
  bool energy_seen = false, power_seen = false, top_seen = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(4);
  while ((!energy_seen || !power_seen || !top_seen) && std::chrono::steady_clock::now() < deadline) {
    auto e = fetch(port, energy_of(3));
    ASSERT_EQ(e.status, 200) << e.body;
    if (e.fresh >= committed) {
      auto d = parse_json(e.body);
      auto series = d["series"].GetArray();
      ASSERT_FALSE(series.Empty());
      EXPECT_GE(series[series.Size() - 1]["v"].GetDouble(), 8765.25)
          << "claims fresh_as_of after the reading without showing it: " << e.body;
      energy_seen = true;
    }
    auto p = fetch(port, power_of(10));
    ASSERT_EQ(p.status, 200) << p.body;
    if (p.fresh >= committed) {
      auto d = parse_json(p.body);
      double most = 0;
      for (auto& x : d["series"].GetArray())
        if (x["max"].IsNumber())
          most = std::max(most, x["max"].GetDouble());
      EXPECT_EQ(most, 1e6) << p.body;
      power_seen = true;
    }
    auto t = fetch(port, top_of(3));
    ASSERT_EQ(t.status, 200) << t.body;
    if (t.fresh >= committed) {
      auto d = parse_json(t.body);
      EXPECT_EQ(std::string(d["devices"][0]["device_id"].GetString()), device_id(10)) << t.body;
      top_seen = true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(energy_seen && power_seen && top_seen)
      << "a committed reading must be visible within a few snapshots";
}

TEST_F(LiveAnswerMemo, ARestrictedTokenGetsTheSame404ForAnotherHouseholdAsWithoutTheMemo) {
  auto with = settings(db_->url());
  with.auth_required = true;
  with.auth_rate_limit = 0;
  auto without = with;
  without.live_answer_memo_max_bytes = 0;
  app memo_on{with};
  memo_on.start();
  app memo_off{without};
  memo_off.start();
  const auto admin = make_token("admin", {});
  const auto mine = make_token("read", {household_id(1)});
  wait_live(memo_on.port(), admin);
  wait_live(memo_off.port(), admin);
  // Household 2 and its device 5, memoized for the admin on the current snapshot.
  const std::vector<std::string> theirs = {energy_of(2), power_of(5), top_of(2)};
  for (const auto& t : theirs) {
    bool memoized = false;
    for (int i = 0; i < 10 && !memoized; ++i) {
      auto a = fetch(memo_on.port(), t, admin);
      ASSERT_EQ(a.status, 200) << t << ": " << a.body;
      const auto hits = metric(memo_on.port(), hits_series, admin);
      auto restricted = fetch(memo_on.port(), t, mine);
      auto b = fetch(memo_on.port(), t, admin);
      memoized = a.fresh == b.fresh && metric(memo_on.port(), hits_series, admin) - hits == 1;
      EXPECT_EQ(restricted.status, 404) << t << ": " << restricted.body;
      auto plain = fetch(memo_off.port(), t, mine);
      EXPECT_EQ(plain.status, 404) << t;
      EXPECT_EQ(restricted.body, plain.body) << t;
    }
    EXPECT_TRUE(memoized) << t << ": the admin's answer was never memoized";
  }
  // Its own household is answered (and memoized under the same keys as anyone's).
  EXPECT_EQ(fetch(memo_on.port(), energy_of(1), mine).status, 200);
  EXPECT_EQ(fetch(memo_on.port(), power_of(1), mine).status, 200);
}

TEST_F(LiveAnswerMemo, ZeroBytesDisablesIt) {
  auto s = settings(db_->url());
  s.live_answer_memo_max_bytes = 0;
  app server{s};
  server.start();
  wait_live(server.port());
  // The metrics registry is per process: only this server is polled meanwhile.
  const auto hits = metric(server.port(), hits_series);
  for (int i = 0; i < 5; ++i)
    for (const auto& t : {energy_of(1), power_of(2), top_of(1)}) {
      auto a = fetch(server.port(), t);
      ASSERT_EQ(a.status, 200) << t << ": " << a.body;
    }
  EXPECT_EQ(metric(server.port(), hits_series) - hits, 0);
}

} // namespace
