// Client-side smoke tests: joule-bench and joule-sim run against a stub server inside this
// test (fixed JSON answers), complete and write JSON that parses. They say nothing about the
// real server; a real-server variant belongs with the server's integration tests.
#include <gtest/gtest.h>

#include <rapidjson/document.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <unistd.h>

#include "bench/open_loop_client.hpp"
#include "common/percentiles.hpp"
#include "stub_server.hpp"
#include "subprocess.hpp"

using joule::bench::test::run_command;
using joule::bench::test::stub_server;

namespace {

class BenchClientSmoke : public ::testing::Test {
protected:
  std::string url() const { return "http://127.0.0.1:" + std::to_string(server_.port()); }

  rapidjson::Document run_bench(const std::string& args) {
    const std::string json_path =
        ::testing::TempDir() + "joule_bench_smoke_" + std::to_string(getpid()) + ".json";
    auto r = run_command(std::string(JOULE_BENCH_PATH) + " " + args + " --json " + json_path);
    EXPECT_EQ(r.exit_code, 0) << r.out;
    std::ifstream in(json_path);
    std::stringstream s;
    s << in.rdbuf();
    std::remove(json_path.c_str());
    rapidjson::Document doc;
    doc.Parse(s.str().c_str());
    EXPECT_FALSE(doc.HasParseError()) << s.str();
    return doc;
  }

  stub_server server_;
};

TEST_F(BenchClientSmoke, ReadScenarioCompletesAndReportsEveryRequest) {
  auto doc = run_bench("read --url " + url() + " --nocache-url " + url() +
                       " --households 20 --seed 3 --rates 200,400 --duration 1s --connections 8");
  ASSERT_TRUE(doc.IsObject());
  EXPECT_STREQ(doc["scenario"].GetString(), "read");
  for (const char* label : {"cache", "nocache"}) {
    const auto& s = doc["servers"][label];
    ASSERT_EQ(s["runs"].Size(), 2u) << label;
    const auto& all = s["runs"][1]["all"];
    EXPECT_EQ(all["requests"].GetUint64(), 400u);
    EXPECT_EQ(all["ok"].GetUint64(), 400u);
    EXPECT_EQ(all["errors"].GetUint64(), 0u);
    EXPECT_EQ(all["cache"]["hit"].GetUint64() + all["cache"]["miss"].GetUint64(), 400u);
    EXPECT_GT(all["p50_ms"].GetDouble(), 0.0);
    EXPECT_LE(all["p50_ms"].GetDouble(), all["p95_ms"].GetDouble());
    EXPECT_LE(all["p95_ms"].GetDouble(), all["max_ms"].GetDouble());
    EXPECT_TRUE(s["runs"][0]["endpoints"].HasMember("power_1m_1h"));
    // Latency depends on the machine's load: only check the verdict is one of the rates.
    const auto& best = s["max_rate_p95_le_10ms"];
    EXPECT_TRUE(best.IsNull() || best.GetDouble() == 200.0 || best.GetDouble() == 400.0);
  }
  EXPECT_GE(server_.requests(), 1200u);
}

// --token: every open-loop read carries the bearer token (the old server ignores it, a server
// with authentication needs it); without the option no Authorization header is sent.
TEST_F(BenchClientSmoke, ReadScenarioSendsTheBearerTokenOnEveryRequest) {
  auto doc = run_bench("read --url " + url() + " --households 5 --seed 3 --rates 100 "
                       "--duration 1s --connections 4 --cooldown 0s --token s3cr3t-t0ken");
  ASSERT_TRUE(doc.IsObject());
  EXPECT_EQ(doc["servers"]["cache"]["runs"][0]["all"]["ok"].GetUint64(), 100u);
  EXPECT_EQ(server_.requests_with_authorization("Bearer s3cr3t-t0ken"), 100u);
  EXPECT_EQ(server_.requests_with_authorization(""), 0u);

  run_bench("read --url " + url() + " --households 5 --seed 3 --rates 50 --duration 1s "
            "--connections 4 --cooldown 0s");
  EXPECT_EQ(server_.requests_with_authorization(""), 50u);
  EXPECT_EQ(server_.requests_with_authorization("Bearer s3cr3t-t0ken"), 100u);
}

TEST_F(BenchClientSmoke, RawVsRollupParsesStubAnswers) {
  auto doc = run_bench("raw-vs-rollup --url " + url() + " --raw-url " + url() +
                       " --households 5 --requests 3");
  ASSERT_TRUE(doc.IsObject());
  const auto& e = doc["endpoints"]["energy_5m_24h"];
  EXPECT_EQ(e["n"].GetUint64(), 3u);
  EXPECT_EQ(e["raw_errors"].GetUint64(), 0u);
  // The stub answers by the contract, so no shape problem may be reported.
  EXPECT_EQ(std::string(doc["endpoints"]["top_devices"]["notes"].GetString()).find("rollup:"),
            std::string::npos);
}

TEST_F(BenchClientSmoke, IngestCountsAcceptedReadings) {
  auto doc = run_bench("ingest --url " + url() + " --households 10 --duration 1s --batch 100 "
                       "--ingest-connections 1 --read-rate 50");
  ASSERT_TRUE(doc.IsObject());
  EXPECT_GT(doc["readings_accepted"].GetUint64(), 0u);
  EXPECT_EQ(doc["readings_accepted"].GetUint64() % 100, 0u);
  EXPECT_EQ(doc["batches_failed"].GetUint64(), 0u);
  EXPECT_EQ(doc["reads"]["all"]["errors"].GetUint64(), 0u);
}

TEST_F(BenchClientSmoke, IngestAgainstMissingEndpointReportsErrorsCleanly) {
  // Nothing listens on this port once the socket is closed: connection errors, no crash.
  int port = 0;
  {
    stub_server gone;
    port = gone.port();
  }
  auto doc = run_bench("ingest --url http://127.0.0.1:" + std::to_string(port) +
                       " --households 3 --duration 500ms --read-rate 20");
  ASSERT_TRUE(doc.IsObject());
  EXPECT_EQ(doc["readings_accepted"].GetUint64(), 0u);
  EXPECT_GT(doc["batches_failed"].GetUint64(), 0u);
  EXPECT_GT(doc["reads"]["all"]["errors"].GetUint64(), 0u);
}

} // namespace

namespace {

// Open loop, no coordinated omission: a server that needs 20 ms per request behind a single
// connection serves 50 req/s; offered 100 req/s, the backlog grows for the whole second and
// every queued request is charged its wait from the intended send time.
TEST(OpenLoopClient, QueueingDelayCountsInLatency) {
  stub_server slow(std::chrono::milliseconds(20));
  joule::bench::open_loop_options o;
  o.url = joule::bench::http_url::parse("http://127.0.0.1:" + std::to_string(slow.port()));
  o.rate = 100;
  o.duration = std::chrono::seconds(1);
  o.connections = 1;
  o.timeout = std::chrono::seconds(5);
  std::vector<joule::bench::load_request> requests = {{"/analytics/households/h/top-devices?limit=5", 0, {}}};
  auto run = joule::bench::run_open_loop(o, requests);
  ASSERT_EQ(run.outcomes.size(), 100u);
  std::vector<int64_t> latencies;
  for (const auto& r : run.outcomes) {
    EXPECT_EQ(r.status, 200);
    latencies.push_back(r.latency_ns);
  }
  auto s = joule::bench::summarize_latencies(latencies);
  // Service time alone is ~20 ms; the last requests waited ~1 s in the queue.
  EXPECT_GT(s.p50_ms, 200.0);
  EXPECT_GT(s.max_ms, 700.0);
  EXPECT_GT(run.elapsed_s, 1.7); // 100 × 20 ms of service
}

// A request still unanswered at its timeout is cut and counted as a timeout (one watchdog for
// every connection, not a timer per socket operation); the connection is reopened for the next.
TEST(OpenLoopClient, AnUnansweredRequestIsATimeoutAndTheNextOneStillRuns) {
  stub_server slow(std::chrono::milliseconds(400));
  joule::bench::open_loop_options o;
  o.url = joule::bench::http_url::parse("http://127.0.0.1:" + std::to_string(slow.port()));
  o.rate = 4;
  o.duration = std::chrono::milliseconds(1000);
  o.connections = 4;
  o.timeout = std::chrono::milliseconds(150);
  std::vector<joule::bench::load_request> requests = {{"/analytics/households/h/top-devices?limit=5", 0, {}}};
  auto run = joule::bench::run_open_loop(o, requests);
  ASSERT_EQ(run.outcomes.size(), 4u);
  for (const auto& r : run.outcomes) {
    EXPECT_TRUE(r.timed_out);
    EXPECT_EQ(r.status, 0);
    EXPECT_LT(r.latency_ns, 390'000'000) << "cut at its timeout, not when the server answered";
  }
  joule::bench::open_loop_options fast = o;
  fast.timeout = std::chrono::seconds(2);
  auto ok = joule::bench::run_open_loop(fast, requests);
  for (const auto& r : ok.outcomes)
    EXPECT_EQ(r.status, 200);
}

// joule-sim live --target posts every device's reading each tick to POST /telemetry.
TEST(SimLiveHttp, PostsEveryReadingToTheServer) {
  stub_server server;
  auto r = run_command(std::string(JOULE_SIM_PATH) + " live --households 3 --seed 4 --interval 1s "
                       "--duration 2500ms --batch 4 --json --target http://127.0.0.1:" +
                       std::to_string(server.port()));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  rapidjson::Document doc;
  doc.Parse(r.out.c_str());
  ASSERT_FALSE(doc.HasParseError()) << r.out;
  EXPECT_GE(doc["ticks"].GetUint64(), 1u);
  EXPECT_EQ(doc["readings_accepted"].GetUint64(), doc["ticks"].GetUint64() * doc["devices"].GetUint64());
  EXPECT_EQ(doc["failed_batches"].GetUint64(), 0u);
}

} // namespace
