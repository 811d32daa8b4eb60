#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <map>

#include "config/settings.hpp"

using namespace joule::config;

namespace {

std::function<const char*(const char*)> env_of(const std::map<std::string, std::string>& m) {
  return [m](const char* name) -> const char* {
    auto it = m.find(name);
    return it == m.end() ? nullptr : it->second.c_str();
  };
}

} // namespace

TEST(Settings, DefaultsAreTheDesignDocumentPolicies) {
  auto r = load({}, env_of({}), "");
  ASSERT_TRUE(r.error.empty()) << r.error;
  auto& p = r.values.refresh_policies;
  EXPECT_EQ(p.at("device_1m").start_offset, std::chrono::hours(2));
  EXPECT_EQ(p.at("device_1m").schedule_interval, std::chrono::seconds(30));
  EXPECT_EQ(p.at("household_5m").start_offset, std::chrono::hours(24));
  EXPECT_EQ(p.at("device_1h").schedule_interval, std::chrono::minutes(10));
  EXPECT_EQ(r.values.cache_ttl, std::chrono::seconds(60));
}

TEST(Settings, FlagBeatsEnvironmentBeatsFile) {
  auto path = std::string("/tmp/joule_settings_test_") + std::to_string(::getpid()) + ".conf";
  {
    std::ofstream f{path};
    f << "# comment\ndb.pool_size = 3\nhttp.listen = 127.0.0.1:1\nredis.url = \"\"\n";
  }
  auto r = load({"--http.listen=127.0.0.1:3"},
                env_of({{"JOULE_HTTP_LISTEN", "127.0.0.1:2"}, {"JOULE_DB_URL", "postgresql://x/y"}}),
                path);
  std::remove(path.c_str());
  ASSERT_TRUE(r.error.empty()) << r.error;
  EXPECT_EQ(r.values.db_pool_size, 3);
  EXPECT_EQ(r.values.http_listen, "127.0.0.1:3");
  EXPECT_EQ(r.values.db_url, "postgresql://x/y");
  EXPECT_EQ(r.values.redis_url, "");  // empty disables the cache
}

TEST(Settings, BadValueNamesTheSetting) {
  auto r = load({}, env_of({{"JOULE_DB_POOL_SIZE", "lots"}}), "");
  EXPECT_NE(r.error.find("db.pool_size"), std::string::npos) << r.error;
  EXPECT_NE(r.error.find("JOULE_DB_POOL_SIZE"), std::string::npos) << r.error;
  r = load({"--refresh.device_1m.schedule_interval=soon"}, env_of({}), "");
  EXPECT_NE(r.error.find("refresh.device_1m.schedule_interval"), std::string::npos) << r.error;
  r = load({"--redis.url=http://x:1"}, env_of({}), "");
  EXPECT_NE(r.error.find("redis.url"), std::string::npos) << r.error;
  // A password in the URL is refused (not supported) and never echoed in the message.
  r = load({"--redis.url=redis://:hunter2@cache:6379"}, env_of({}), "");
  EXPECT_NE(r.error.find("redis.url"), std::string::npos) << r.error;
  EXPECT_EQ(r.error.find("hunter2"), std::string::npos) << r.error;
  r = load({"--no.such=1"}, env_of({}), "");
  EXPECT_NE(r.error.find("unknown setting 'no.such'"), std::string::npos) << r.error;
  r = load({"--db.pool_size=0"}, env_of({}), "");
  EXPECT_NE(r.error.find("between 1 and"), std::string::npos) << r.error;
  r = load({"--refresh.device_1m.start_offset=1m"}, env_of({}), "");
  EXPECT_NE(r.error.find("larger than end_offset"), std::string::npos) << r.error;
}

TEST(Settings, MissingNamedConfigFileIsAnError) {
  auto r = load({"--config", "/nonexistent/joule.conf"}, env_of({}), "");
  EXPECT_NE(r.error.find("/nonexistent/joule.conf"), std::string::npos);
}

TEST(Settings, HelpListsEverySettingWithItsEnvironmentVariable) {
  auto text = help_text();
  for (auto& o : options()) {
    EXPECT_NE(text.find("--" + o.key), std::string::npos) << o.key;
    EXPECT_NE(text.find(o.env_name()), std::string::npos) << o.key;
  }
  EXPECT_NE(text.find("JOULE_DB_URL"), std::string::npos);
  EXPECT_NE(text.find("JOULE_REDIS_URL"), std::string::npos);
  EXPECT_NE(text.find("JOULE_HTTP_LISTEN"), std::string::npos);
}

TEST(Settings, Durations) {
  EXPECT_EQ(parse_duration("250ms"), millis(250));
  EXPECT_EQ(parse_duration("30s"), millis(30000));
  EXPECT_EQ(parse_duration("5m"), millis(300000));
  EXPECT_EQ(parse_duration("2h"), millis(7200000));
  EXPECT_EQ(parse_duration("7d"), millis(604800000));
  EXPECT_FALSE(parse_duration("5 minutes"));
  EXPECT_FALSE(parse_duration("-1s"));
  EXPECT_EQ(format_duration(millis(7200000)), "2h");
}

TEST(Settings, HttpHardeningDefaultsAndBounds) {
  auto r = load({}, env_of({}), "");
  ASSERT_TRUE(r.error.empty()) << r.error;
  EXPECT_EQ(r.values.http_header_limit, 16 * 1024);
  EXPECT_EQ(r.values.http_header_timeout, std::chrono::seconds(10));
  EXPECT_EQ(r.values.http_pipeline_limit, 16);
  EXPECT_EQ(r.values.http_max_connections, 10000);
  r = load({"--http.pipeline_limit=0"}, env_of({}), "");
  EXPECT_NE(r.error.find("http.pipeline_limit"), std::string::npos) << r.error;
  r = load({"--http.header_limit=100"}, env_of({}), "");
  EXPECT_NE(r.error.find("http.header_limit"), std::string::npos) << r.error;
  r = load({"--http.max_connections=0"}, env_of({}), "");
  EXPECT_NE(r.error.find("http.max_connections"), std::string::npos) << r.error;
  r = load({"--http.header_timeout=1ms"}, env_of({}), "");
  EXPECT_NE(r.error.find("http.header_timeout"), std::string::npos) << r.error;
}
