// The rollup definitions table and what is generated from it: settings keys, default
// policies, the watermark board's slots, and the checks a new entry must pass.
#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <sstream>

#include "config/rollups.hpp"
#include "config/settings.hpp"
#include "db/rollups.hpp"
#include "db/watermarks.hpp"

using namespace joule;
using namespace joule::config;

namespace {

std::set<std::string> option_keys() {
  std::set<std::string> keys;
  for (auto& o : options())
    keys.insert(o.key);
  return keys;
}

} // namespace

TEST(RollupDefs, TheShippedTableIsValid) {
  auto errors = validate(rollup_defs());
  EXPECT_TRUE(errors.empty()) << errors.front();
  EXPECT_EQ(rollup_names(), "device_1m, household_5m, device_1h");
}

TEST(RollupDefs, SettingsKeysAreGeneratedFromTheTable) {
  auto keys = option_keys();
  for (auto& d : rollup_defs())
    for (auto* field : {"start_offset", "end_offset", "schedule_interval"})
      EXPECT_EQ(keys.count("refresh." + d.name + "." + field), 1u) << d.name << " " << field;
  // Exactly three per rollup, plus the shared refresh.max_batch, refresh.catchup_duty and
  // refresh.catchup_parallel: nothing left over from a removed rollup.
  std::size_t refresh_keys = 0;
  for (auto& k : keys)
    refresh_keys += k.rfind("refresh.", 0) == 0;
  EXPECT_EQ(refresh_keys, 3 * rollup_defs().size() + 3);
}

TEST(RollupDefs, TheExistingSettingNamesKeepWorking) {
  auto r = load({"--refresh.device_1m.start_offset=3h", "--refresh.household_5m.end_offset=10m",
                 "--refresh.device_1h.schedule_interval=15m"},
                [](const char* n) -> const char* {
                  return std::string(n) == "JOULE_REFRESH_DEVICE_1M_SCHEDULE_INTERVAL" ? "45s"
                                                                                      : nullptr;
                },
                "");
  ASSERT_TRUE(r.error.empty()) << r.error;
  auto& p = r.values.refresh_policies;
  EXPECT_EQ(p.at("device_1m").start_offset, std::chrono::hours(3));
  EXPECT_EQ(p.at("device_1m").schedule_interval, std::chrono::seconds(45));
  EXPECT_EQ(p.at("household_5m").end_offset, std::chrono::minutes(10));
  EXPECT_EQ(p.at("device_1h").schedule_interval, std::chrono::minutes(15));
  // The untouched fields keep the table's defaults.
  EXPECT_EQ(p.at("device_1h").start_offset, rollup_defs()[2].policy.start_offset);
  // print-config renders each key from the map.
  for (auto& o : options()) {
    if (o.key == "refresh.device_1m.start_offset") {
      EXPECT_EQ(o.get(r.values), "3h");
    }
  }
}

TEST(RollupDefs, DefaultPoliciesComeFromTheTable) {
  settings s;
  ASSERT_EQ(s.refresh_policies.size(), rollup_defs().size());
  for (auto& d : rollup_defs()) {
    auto& p = s.refresh_policies.at(d.name);
    EXPECT_EQ(p.start_offset, d.policy.start_offset) << d.name;
    EXPECT_EQ(p.end_offset, d.policy.end_offset) << d.name;
    EXPECT_EQ(p.schedule_interval, d.policy.schedule_interval) << d.name;
  }
}

TEST(RollupDefs, ConfigFileDocumentsEveryRollupKey) {
  std::ifstream in{std::string(JOULE_SOURCE_DIR) + "/config/joule.conf"};
  ASSERT_TRUE(in);
  std::stringstream text;
  text << in.rdbuf();
  // The rollup keys (a new rollup entry needs its three lines there too).
  for (auto& o : options()) {
    if (o.key.rfind("refresh.", 0) == 0) {
      EXPECT_NE(text.str().find("\n" + o.key + " = "), std::string::npos)
          << o.key << " is missing from config/joule.conf";
    }
  }
}

TEST(RollupDefs, SpecsDeriveTablesAndSqlWidths) {
  ASSERT_EQ(db::rollups().size(), rollup_defs().size());
  auto* h = db::find_rollup("device_1h");
  ASSERT_NE(h, nullptr);
  EXPECT_EQ(h->table, "rollup_device_1h");
  EXPECT_EQ(h->width, 3600LL * 1000000);
  EXPECT_EQ(h->width_sql, "1 hour");
  EXPECT_EQ(db::find_rollup("household_5m")->width_sql, "5 minutes");
  EXPECT_EQ(db::find_rollup("device_1m")->read_view, "ca_device_1m");
  EXPECT_EQ(db::find_rollup("nope"), nullptr);
  rollup_def odd{"x", std::chrono::seconds(90), "", "device_id", false, {}, "v"};
  EXPECT_EQ(odd.width_sql(), "90 seconds");
}

TEST(RollupDefs, WatermarkBoardHasOneSlotPerRollup) {
  db::watermark_board b;
  EXPECT_EQ(b.size(), rollup_defs().size());
  for (auto& d : rollup_defs())
    EXPECT_FALSE(b.get(d.name)) << d.name;
  b.raise("household_5m", 100);
  b.raise("household_5m", 50);  // never moves back
  EXPECT_EQ(b.get("household_5m"), 100);
  EXPECT_EQ(b.get(rollup_index("household_5m")), 100);
  EXPECT_FALSE(b.get("device_1m"));
  b.raise("unknown", 7);  // ignored, not a crash
  EXPECT_FALSE(b.get("unknown"));
  EXPECT_FALSE(b.get(rollup_defs().size()));
}

TEST(RollupDefs, ValidationCatchesBadEntries) {
  using std::chrono::hours;
  using std::chrono::minutes;
  std::vector<rollup_def> defs = {
      {"device_1m", minutes(1), "", "device_id", true, {hours(2), minutes(1), minutes(1)}, "v1"},
      {"household_1h", hours(1), "device_1m", "household_id", false,
       {hours(24), hours(1), minutes(10)}, "v2"},
      {"device_7m", minutes(7), "", "device_id", false, {hours(2), minutes(1), minutes(1)}, "v3"},
      {"Bad-Name", minutes(1), "", "device_id", false, {hours(2), minutes(1), minutes(1)}, "v4"},
      {"device_2h", hours(2), "device_1m", "device_id", true, {hours(3), hours(2), minutes(1)},
       "v5"},
      {"device_1m", minutes(1), "later", "device_id", true, {hours(2), minutes(1), minutes(1)},
       "v6"},
  };
  auto errors = validate(defs);
  auto has = [&](const std::string& rollup, const std::string& what) {
    for (auto& e : errors)
      if (e.find("'" + rollup + "'") != std::string::npos && e.find(what) != std::string::npos)
        return true;
    return false;
  };
  EXPECT_TRUE(has("household_1h", "key column must be its source's"));
  EXPECT_TRUE(has("device_7m", "divide a day"));
  EXPECT_TRUE(has("Bad-Name", "lower-case"));
  EXPECT_TRUE(has("device_2h", "two buckets"));
  EXPECT_TRUE(has("device_1m", "defined twice"));
  EXPECT_TRUE(has("device_1m", "listed before it"));
  EXPECT_FALSE(has("device_1m", "two buckets"));
}
