// joule-sim against a real PostgreSQL: the rows it reports are the rows in the table, every
// device is registered, and the same seed gives the same ids. Needs JOULE_TEST_PG.
#include <gtest/gtest.h>

#include <pqxx/pqxx>
#include <rapidjson/document.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <unistd.h>

#include "subprocess.hpp"

using joule::bench::test::run_command;
using joule::bench::test::shell_quote;

namespace {

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class SimBackfill : public ::testing::Test {
protected:
  void SetUp() override {
    const char* pg = std::getenv("JOULE_TEST_PG");
    if (!pg || !*pg)
      GTEST_SKIP() << "JOULE_TEST_PG not set";
    admin_ = pg;
    dbname_ = "joule_test_sim_" + std::to_string(getpid());
    {
      pqxx::connection c(admin_);
      pqxx::nontransaction tx(c);
      tx.exec("DROP DATABASE IF EXISTS " + dbname_ + " WITH (FORCE)");
      tx.exec("CREATE DATABASE " + dbname_);
    }
    created_ = true;
    db_ = admin_ + " dbname=" + dbname_; // a later keyword wins in libpq
    std::vector<std::filesystem::path> files;
    for (const auto& e : std::filesystem::directory_iterator(std::string(JOULE_SOURCE_DIR) + "/db/migrations"))
      if (e.path().extension() == ".sql")
        files.push_back(e.path());
    std::sort(files.begin(), files.end());
    ASSERT_FALSE(files.empty());
    pqxx::connection c(db_);
    for (const auto& f : files) {
      pqxx::nontransaction tx(c);
      tx.exec(read_file(f));
    }
  }

  void TearDown() override {
    if (!created_)
      return;
    pqxx::connection c(admin_);
    pqxx::nontransaction tx(c);
    tx.exec("DROP DATABASE IF EXISTS " + dbname_ + " WITH (FORCE)");
  }

  rapidjson::Document sim_json(const std::string& args) {
    auto r = run_command(std::string(JOULE_SIM_PATH) + " " + args);
    EXPECT_EQ(r.exit_code, 0) << args;
    rapidjson::Document doc;
    doc.Parse(r.out.c_str());
    EXPECT_FALSE(doc.HasParseError()) << r.out;
    return doc;
  }

  int64_t count(const std::string& sql) {
    pqxx::connection c(db_);
    pqxx::read_transaction tx(c);
    return tx.exec1(sql)[0].as<int64_t>();
  }

  std::set<std::string> listed_device_ids(const std::string& fleet) {
    auto doc = sim_json("list " + fleet);
    std::set<std::string> ids;
    for (const auto& h : doc["households"].GetArray())
      for (const auto& d : h["devices"].GetArray())
        ids.insert(d["id"].GetString());
    return ids;
  }

  std::string admin_, dbname_, db_;
  bool created_ = false;
};

TEST_F(SimBackfill, WritesExactlyTheRowsItReportsAndRegistersEveryDevice) {
  const std::string fleet = "--households 7 --seed 42 --interval 10s";
  auto doc = sim_json("backfill " + fleet + " --db " + shell_quote(db_) +
                      " --hours 1 --end 2026-01-01T00:00:00Z --txn-rows 5000 --json");
  ASSERT_TRUE(doc.IsObject());
  const int64_t rows = doc["rows"].GetInt64();
  const int64_t devices = doc["devices"].GetInt64();
  EXPECT_EQ(doc["households"].GetInt64(), 7);
  EXPECT_EQ(rows, devices * 360); // one hour at 10 s
  EXPECT_EQ(count("SELECT count(*) FROM telemetry"), rows);
  EXPECT_EQ(count("SELECT count(*) FROM devices"), devices);
  EXPECT_EQ(count("SELECT count(DISTINCT household_id) FROM devices"), 7);
  EXPECT_EQ(count("SELECT count(*) FROM telemetry t LEFT JOIN devices d ON d.id = t.device_id "
                  "WHERE d.id IS NULL OR d.household_id <> t.household_id"),
            0);
  EXPECT_EQ(count("SELECT count(*) FROM telemetry WHERE energy_wh < 0 OR power_w < 0 "
                  "OR abs(energy_wh - power_w * 10 / 3600) > 1e-9"),
            0);
  EXPECT_EQ(count("SELECT count(*) FROM telemetry WHERE ts < '2025-12-31T23:00:00Z' "
                  "OR ts >= '2026-01-01T00:00:00Z'"),
            0);
  // The registered ids are exactly the ones `list` prints for the same seed.
  pqxx::connection c(db_);
  pqxx::read_transaction tx(c);
  std::set<std::string> in_db;
  for (const auto& row : tx.exec("SELECT id::text FROM devices"))
    in_db.insert(row[0].as<std::string>());
  EXPECT_EQ(in_db, listed_device_ids(fleet));
}

TEST_F(SimBackfill, SameSeedSameIdsAndReadings) {
  const std::string fleet = "--households 3 --seed 9 --interval 60s";
  const std::string range = " --hours 1 --end 2026-01-01T00:00:00Z --json --db " + shell_quote(db_);
  auto first = sim_json("backfill " + fleet + range);
  auto second = sim_json("backfill " + fleet + range);
  EXPECT_EQ(second["devices_new"].GetInt64(), 0); // ON CONFLICT DO NOTHING: nothing new
  EXPECT_EQ(count("SELECT count(*) FROM devices"), first["devices"].GetInt64());
  // Every reading was written twice with identical values.
  EXPECT_EQ(count("SELECT count(*) FROM (SELECT ts, device_id FROM telemetry GROUP BY 1, 2 "
                  "HAVING count(*) <> 2 OR min(power_w) <> max(power_w)) x"),
            0);
  EXPECT_EQ(listed_device_ids(fleet), listed_device_ids(fleet));
  EXPECT_NE(listed_device_ids(fleet), listed_device_ids("--households 3 --seed 10"));
}

TEST_F(SimBackfill, LiveWritesOneReadingPerDevicePerTick) {
  const std::string fleet = "--households 2 --seed 5 --interval 1s";
  auto doc = sim_json("live " + fleet + " --db " + shell_quote(db_) + " --duration 2500ms --json");
  ASSERT_TRUE(doc.IsObject());
  const int64_t ticks = doc["ticks"].GetInt64();
  EXPECT_GE(ticks, 1);
  EXPECT_LE(ticks, 3);
  EXPECT_EQ(doc["readings_accepted"].GetInt64(), ticks * doc["devices"].GetInt64());
  EXPECT_EQ(count("SELECT count(*) FROM telemetry"), doc["readings_accepted"].GetInt64());
}

} // namespace
