// Catch-up that does not starve reads (issue 9 §4), over real HTTP and PostgreSQL: a server
// starting on a history materialises it in paced batches, one rollup at a time, and reports
// its progress in /admin/status and /metrics while it runs; reads meanwhile answer with a
// fresh_as_of never ahead of the data, and equal to raw rows.
#include <gtest/gtest.h>

#include <cmath>
#include <thread>

#include "core/timefmt.hpp"
#include "tests/support/api_fixture.hpp"

using namespace joule;
using namespace joule::test;

namespace {

double metric(const std::string& text, const std::string& series) {
  auto at = text.find("\n" + series + " ");
  if (at == std::string::npos)
    return NAN;
  return std::stod(text.substr(at + series.size() + 2));
}

TEST(CatchUp, ProgressIsReportedWhileHistoryMaterialisesAndReadsStayTruthful) {
  pg_test_db db("joule_test_catchup");
  seed_fleet(db, 4, 3, 30, 30);  // 30 h at one reading per 30 s: 43k rows
  auto rows = std::stoll(db.scalar("SELECT count(*) FROM telemetry"));
  auto s = test_settings(db.url(), "");
  // Small batches, paced hard (a 20 % duty cycle), one rollup at a time: tens of batches over
  // a couple of seconds, so the test sees the catch-up while it runs.
  s.refresh_max_batch = std::chrono::minutes(30);
  s.refresh_catchup_duty = 20;
  s.refresh_catchup_parallel = 1;
  app server(s);
  server.start();
  auto port = server.port();
  auto db_now = [&] {
    return std::stoll(db.scalar("SELECT (extract(epoch from clock_timestamp()) * 1e6)::bigint"));
  };

  bool seen_active = false;
  int reads = 0;
  for (int i = 0; i < 600; ++i) {
    auto st = http_get(port, "/admin/status");
    ASSERT_EQ(st.status, 200) << st.body;
    auto d = parse_json(st.body);
    int active = 0;
    for (auto* name : {"device_1m", "household_5m", "device_1h"}) {
      auto key = std::string("refresh.") + name;
      if (!d.HasMember(key.c_str()) || !d[key.c_str()].HasMember("catchup"))
        continue;
      auto& c = d[key.c_str()]["catchup"];
      if (!c["active"].GetBool())
        continue;
      ++active;
      if (c["batches"].GetInt() >= 2) {
        seen_active = true;
        EXPECT_GT(c["remaining_seconds"].GetDouble(), 0) << name;
        EXPECT_GT(c["done_seconds"].GetDouble(), 0) << name;
        EXPECT_GT(c["rows"].GetInt64(), 0) << name;
        EXPECT_GT(c["rows_per_second"].GetDouble(), 0) << name;
        // /metrics is a second request: the catch-up may have finished in between (it is
        // fast on a quiet box). Then the status must say so too; otherwise both agree.
        auto m = http_get(port, "/metrics").body;
        if (metric(m, std::string("joule_refresh_catchup_active{rollup=\"") + name + "\"}") ==
            1) {
          EXPECT_GT(metric(m, std::string("joule_refresh_catchup_remaining_seconds{rollup=\"") +
                                  name + "\"}"),
                    0)
              << name;
        } else {
          auto again = parse_json(http_get(port, "/admin/status").body);
          EXPECT_FALSE(again[key.c_str()]["catchup"]["active"].GetBool())
              << name << ": /metrics says idle while /admin/status still says active";
        }
      }
    }
    EXPECT_LE(active, 1) << "refresh.catchup_parallel = 1";
    // Reads during the catch-up: truthful and complete (raw rows above the watermarks).
    auto r = http_get(port, "/analytics/households/" + household_id(1 + reads % 4) +
                                "/energy?step=1h&start=" +
                                format_rfc3339(floor_to(now_micros(), 3600000000LL) - 30 * 3600000000LL));
    ASSERT_EQ(r.status, 200) << r.body;
    auto e = parse_json(r.body);
    EXPECT_LE(*parse_rfc3339(e["fresh_as_of"].GetString()), db_now());
    EXPECT_GE(e["series"].Size(), 30u);
    ++reads;
    if (db.scalar("SELECT count(*) FROM rollup_state WHERE watermark >= now() - "
                  "(CASE name WHEN 'device_1h' THEN interval '1 hour' WHEN 'household_5m' "
                  "THEN interval '5 minutes' ELSE interval '1 minute' END) - 2 * bucket_width") ==
            "3" &&
        active == 0)
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(seen_active) << "the catch-up was never seen in progress";
  // Done: every rollup reports its finished catch-up, nothing remaining.
  auto d = parse_json(http_get(port, "/admin/status").body);
  auto m = http_get(port, "/metrics").body;
  for (auto* name : {"device_1m", "household_5m", "device_1h"}) {
    auto& c = d[(std::string("refresh.") + name).c_str()]["catchup"];
    EXPECT_FALSE(c["active"].GetBool()) << name;
    EXPECT_GE(c["batches"].GetInt(), 20) << name;
    EXPECT_EQ(c["remaining_seconds"].GetDouble(), 0) << name;
    // Every reading below the watermark was aggregated once (raw-sourced rollups).
    EXPECT_GT(c["rows"].GetInt64(), rows * 9 / 10) << name;
    EXPECT_LE(c["rows"].GetInt64(), rows) << name;
    EXPECT_EQ(metric(m, std::string("joule_refresh_catchup_remaining_seconds{rollup=\"") + name +
                            "\"}"),
              0)
        << name;
    EXPECT_EQ(metric(m, std::string("joule_refresh_catchup_active{rollup=\"") + name + "\"}"), 0)
        << name;
  }
}

} // namespace
