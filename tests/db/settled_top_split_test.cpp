// Review (issue 9): db::settled_top's tier split must fall on an hour. A part ending inside
// an hour (hi = the snapshot's device_lo, 5 min aligned) while the device 1 h watermark is
// past that hour must not take the whole device_1h bucket: the live path adds the snapshot's
// 1 min buckets from hi on, so the minutes [hi, next hour) would be counted twice.
// Fixed dates in the past: no dependence on the time of day.
#include <gtest/gtest.h>

#include "core/timefmt.hpp"
#include "db/live_parts.hpp"
#include "db/session.hpp"
#include "tests/support/pg_test_db.hpp"

using namespace joule;

TEST(SettledTopSplit, PartEndingInsideAnHourDoesNotTakeTheWholeHourBucket) {
  test::pg_test_db db("joule_test_settled_top_split");
  const std::string dev = "00000000-0000-0000-0000-0000000000d1";
  const std::string hh = "00000000-0000-0000-0000-0000000000a1";
  db.exec("INSERT INTO devices (id, household_id) VALUES ('" + dev + "', '" + hh + "')");
  // 1 Wh per minute from 09:00 to 11:00 in device_1m, the same hours summed in device_1h.
  db.exec("INSERT INTO rollup_device_1m (bucket, device_id, energy_wh_sum, power_w_sum, "
          "power_w_count, power_w_max) SELECT '2026-01-05 09:00+00'::timestamptz + g * "
          "interval '1 minute', '" + dev + "', 1, 1, 1, 1 FROM generate_series(0, 119) g");
  db.exec("INSERT INTO rollup_device_1h (bucket, device_id, energy_wh_sum, power_w_sum, "
          "power_w_count, power_w_max) VALUES ('2026-01-05 09:00+00', '" + dev +
          "', 60, 60, 60, 1), ('2026-01-05 10:00+00', '" + dev + "', 60, 60, 60, 1)");
  db.exec("UPDATE rollup_state SET watermark = '2026-01-05 11:00+00' "
          "WHERE name IN ('device_1m', 'device_1h')");
  db::session s{db.url()};
  const auto lo = *parse_rfc3339("2026-01-05T09:00:00Z");
  const auto hi = *parse_rfc3339("2026-01-05T10:55:00Z");  // a snapshot's device_lo
  auto part = db::settled_top(s, {dev}, lo, hi);
  double h9 = 0, h10 = 0;
  for (auto& r : part.rows)
    (r.hour == lo ? h9 : h10) += r.energy;
  EXPECT_DOUBLE_EQ(h9, 60);
  // [10:00, 10:55): 55 Wh. The whole device_1h bucket (60) also holds [10:55, 11:00), which
  // the live part adds again from the snapshot.
  EXPECT_DOUBLE_EQ(h10, 55);
}
