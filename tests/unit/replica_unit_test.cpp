// The standby's replay horizon and lag (db/replica.hpp), deterministically: no server, the
// positions a standby would report and the samples the monitor would take on the primary.

#include <cmath>
#include <limits>

#include <gtest/gtest.h>
#include <pqxx/except>

#include "config/settings.hpp"
#include "db/replica.hpp"
#include "db/session.hpp"

namespace joule::db {
namespace {

constexpr std::int64_t s = 1000000;  // µs per second

replay_position at(std::int64_t now, std::optional<std::uint64_t> lsn,
                   std::optional<std::int64_t> ts, bool recovery = true) {
  replay_position p;
  p.in_recovery = recovery;
  p.replay_lsn = lsn;
  p.replay_ts = ts;
  p.now = now;
  return p;
}

TEST(Replica, ParsesLsnText) {
  EXPECT_EQ(parse_lsn("0/0"), 0u);
  EXPECT_EQ(parse_lsn("0/3001120"), 0x3001120u);
  EXPECT_EQ(parse_lsn("16/B374D848"), (0x16ull << 32) | 0xB374D848ull);
  EXPECT_EQ(parse_lsn("16/b374d848"), (0x16ull << 32) | 0xB374D848ull);
  EXPECT_LT(*parse_lsn("0/FFFFFFFF"), *parse_lsn("1/0"));
  for (auto bad : {"", "/", "0/", "/1", "12", "x/1", "1/g", "123456789/0", "0/123456789"})
    EXPECT_FALSE(parse_lsn(bad)) << bad;
}

TEST(Replica, IdleCaughtUpStandbyHasNoLagThoughItsReplayTimestampIsOld) {
  replica_state r{std::chrono::milliseconds{2000}};
  // The last commit was 60 s ago; since then the primary wrote nothing (LSN 500).
  r.add_primary_sample(100 * s, 500);
  auto p = at(100 * s + 200000, 500, 40 * s);
  EXPECT_EQ(r.horizon(p), 100 * s);
  EXPECT_NEAR(r.lag_seconds(p), 0.2, 1e-9);
  EXPECT_TRUE(r.fresh_enough(p));
  // Without the LSN comparison only the replay timestamp is known: 60 s behind.
  replica_state none{std::chrono::milliseconds{2000}};
  EXPECT_EQ(none.horizon(p), 40 * s);
  EXPECT_FALSE(none.fresh_enough(p));
}

TEST(Replica, PausedReplayHoldsTheHorizonAtWhatWasReplayed) {
  replica_state r{std::chrono::milliseconds{2000}};
  r.add_primary_sample(10 * s, 100);
  r.add_primary_sample(11 * s, 200);  // the standby replayed up to here, then paused
  r.add_primary_sample(12 * s, 300);
  r.add_primary_sample(13 * s, 400);
  // Replayed 250: everything the primary had at 11 s, not what it had at 12 s.
  auto p = at(13 * s, 250, 10 * s + 500000);
  EXPECT_EQ(r.horizon(p), 11 * s);
  EXPECT_NEAR(r.lag_seconds(p), 2.0, 1e-9);
  EXPECT_TRUE(r.fresh_enough(p));  // exactly at the limit
  auto later = at(13 * s + 1, 250, 10 * s + 500000);
  EXPECT_FALSE(r.fresh_enough(later));
  // A replay timestamp later than the newest replayed sample wins (a commit after it).
  EXPECT_EQ(r.horizon(at(13 * s, 250, 11 * s + 700000)), 11 * s + 700000);
}

TEST(Replica, UnknownHorizonIsInfiniteLag) {
  replica_state r{std::chrono::milliseconds{2000}};
  r.add_primary_sample(10 * s, 100);
  // Nothing replayed since start-up (no timestamp) and below every sample.
  auto p = at(11 * s, 50, std::nullopt);
  EXPECT_FALSE(r.horizon(p));
  EXPECT_TRUE(std::isinf(r.lag_seconds(p)));
  EXPECT_FALSE(r.fresh_enough(p));
  EXPECT_FALSE(r.horizon(at(11 * s, std::nullopt, std::nullopt)));
}

TEST(Replica, APromotedStandbyIsCurrent) {
  replica_state r{std::chrono::milliseconds{2000}};
  auto p = at(50 * s, std::nullopt, std::nullopt, false);
  EXPECT_EQ(r.horizon(p), 50 * s);
  EXPECT_EQ(r.lag_seconds(p), 0.0);
  EXPECT_TRUE(r.fresh_enough(p));
}

TEST(Replica, SamplesOnlyMoveForwardAndAreBounded) {
  replica_state r{std::chrono::milliseconds{2000}, 3};
  r.add_primary_sample(10 * s, 100);
  r.add_primary_sample(9 * s, 150);   // older: ignored
  r.add_primary_sample(11 * s, 90);   // lower LSN (another primary's?): ignored
  EXPECT_EQ(r.horizon(at(12 * s, 160, std::nullopt)), 10 * s);
  for (int i = 1; i <= 5; ++i)
    r.add_primary_sample((10 + i) * s, 100 + 100 * static_cast<std::uint64_t>(i));
  // Only the newest three are kept: 13 s/400, 14 s/500, 15 s/600.
  EXPECT_FALSE(r.horizon(at(16 * s, 350, std::nullopt)));
  EXPECT_EQ(r.horizon(at(16 * s, 450, std::nullopt)), 13 * s);
  EXPECT_EQ(r.horizon(at(16 * s, 600, std::nullopt)), 15 * s);
}

TEST(Replica, PublishDecidesWhereReadsGo) {
  replica_state r{std::chrono::milliseconds{2000}};
  EXPECT_FALSE(r.usable());
  EXPECT_NE(r.status_json(true).find("\"read_target\":\"primary\""), std::string::npos);
  r.publish(true, 0.5);
  EXPECT_TRUE(r.usable());
  EXPECT_NE(r.status_json(true).find("\"read_target\":\"standby\""), std::string::npos);
  EXPECT_NE(r.status_json(true).find("\"lag_seconds\":0.5"), std::string::npos);
  // Not configured: always the primary.
  EXPECT_NE(r.status_json(false).find("\"read_target\":\"primary\""), std::string::npos);
  EXPECT_NE(r.status_json(false).find("\"standby\":\"none\""), std::string::npos);
  r.publish(true, 2.5);
  EXPECT_FALSE(r.usable());
  r.publish(true, 1.0);
  EXPECT_TRUE(r.usable());  // back once it caught up
  r.publish(false, std::numeric_limits<double>::infinity());
  EXPECT_FALSE(r.usable());
  EXPECT_NE(r.status_json(true).find("\"lag_seconds\":null"), std::string::npos);
  EXPECT_NE(r.status_json(true).find("\"standby\":\"unreachable\""), std::string::npos);
}

TEST(Replica, AConnectionErrorNeverQuotesThePassword) {
  // libpq quotes a token it cannot decode; the message goes to the logs at every retry.
  for (std::string url : {"postgresql://u:pa%zzword@127.0.0.1:1/db",
                          "postgresql://u@127.0.0.1:1/db?sslmode=disable&password=se%zzcret"}) {
    try {
      session s{url};
      ADD_FAILURE() << "connected with " << url;
    } catch (const pqxx::broken_connection& e) {
      std::string what = e.what();
      EXPECT_EQ(what.find("%zz"), std::string::npos) << what;
      EXPECT_NE(what.find("***"), std::string::npos) << what;
    }
  }
  EXPECT_EQ(hide_password("token \"se cr\" and se cr", "host=h password = 'se cr' user=u"),
            "token \"***\" and ***");
  EXPECT_EQ(hide_password("no secret here", "host=h user=u"), "no secret here");
  EXPECT_EQ(hide_password("bad \"hunter2\"", "postgresql://u:hunter2@a:1,b:2/d"), "bad \"***\"");
}

TEST(Replica, AVerdictNotRenewedRunsOut) {
  // A monitor stuck in libpq (standby host gone without a reset) publishes nothing more: its
  // last "usable" must not keep reads on the standby.
  replica_state r{std::chrono::milliseconds{2000}};
  EXPECT_EQ(r.verdict_ttl(), std::chrono::seconds(5));
  auto t0 = std::chrono::steady_clock::now();
  r.publish(true, 0.1, t0);
  EXPECT_TRUE(r.usable(t0 + std::chrono::seconds(5)));
  EXPECT_FALSE(r.usable(t0 + std::chrono::milliseconds(5001)));
  r.publish(true, 0.1, t0 + std::chrono::seconds(6));  // the monitor answers again
  EXPECT_TRUE(r.usable(t0 + std::chrono::seconds(7)));
  EXPECT_EQ(replica_state{std::chrono::seconds(10)}.verdict_ttl(), std::chrono::seconds(20));
}

} // namespace
} // namespace joule::db

namespace joule::config {
namespace {

// db.read_url may carry a password like db.url: /admin/config and the logs never show it,
// also with several hosts.
TEST(Replica, ReadUrlPasswordIsRedacted) {
  auto uri = redact("db.read_url",
                    "postgresql://joule:s3cret@db2:5432,db1:5432/joule?"
                    "target_session_attrs=prefer-standby");
  EXPECT_EQ(uri.find("s3cret"), std::string::npos) << uri;
  EXPECT_NE(uri.find("db2:5432,db1:5432"), std::string::npos) << uri;
  auto query =
      redact("db.read_url", "postgresql://joule@db2/joule?password=s3cret&sslmode=require");
  EXPECT_EQ(query.find("s3cret"), std::string::npos) << query;
  auto kv = redact("db.read_url", "host=db2,db1 password=s3cret target_session_attrs=standby");
  EXPECT_EQ(kv.find("s3cret"), std::string::npos) << kv;
}

} // namespace
} // namespace joule::config
