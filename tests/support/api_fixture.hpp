#pragma once
// An in-process Joule server on a private database (and optionally a private Redis), for
// tests that talk to it over real HTTP.

#include <memory>
#include <string>

#include <rapidjson/document.h>

#include "actors/app.hpp"
#include "tests/support/http_client.hpp"
#include "tests/support/pg_test_db.hpp"
#include "tests/support/redis_process.hpp"

namespace joule::test {

/// Settings for a test server: port 0, short timeouts, refresh schedules long enough that the
/// test decides when refreshes happen (the first cycle still runs at start).
config::settings test_settings(const std::string& db_url, const std::string& redis_url);

/// Parses JSON or fails the test.
rapidjson::Document parse_json(const std::string& body);

/// Household and device ids used by the fixtures' data: household h, device d (1-based).
std::string household_id(int h);
std::string device_id(int d);

/// The value of one /metrics series (e.g. `joule_db_queries_total{source="pool"}`), 0 when
/// absent; with `token` as a bearer token (servers with auth.required).
double metric(std::uint16_t port, const std::string& series, const std::string& token = {});
/// Whether the server on `port` has its own live tail snapshot (from its /admin/status: the
/// metrics registry is per process, so with several servers in one test a gauge may be
/// another server's).
bool live_published(std::uint16_t port, const std::string& token = {});
/// Waits (up to 30 s) until the server on `port` has published a live snapshot and every
/// rollup in `db` has a watermark; false if that never happens.
bool wait_live_and_rollups(const pg_test_db& db, std::uint16_t port,
                           const std::string& token = {});

/// Registers `households` x `per_household` devices and inserts one reading per device every
/// `every_s` seconds over the last `hours` hours (random values, seeded).
void seed_fleet(const pg_test_db& db, int households, int per_household, int hours, int every_s);

} // namespace joule::test
