// POST /telemetry: every validation case gets its documented answer and writes nothing; an
// accepted batch is entirely visible; concurrent batches land exactly once; saturation is a 503.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "core/timefmt.hpp"
#include "tests/support/api_fixture.hpp"
#include "tests/support/raw_http.hpp"

using namespace joule;
using namespace joule::test;

namespace {

class Ingest : public ::testing::Test {
protected:
  static void SetUpTestSuite() {
    db_ = new pg_test_db("joule_test_ingest");
    seed_fleet(*db_, 2, 3, 0, 3600);  // devices only (plus one reading each)
    auto s = test_settings(db_->url(), "");
    s.http_body_limit = 256 * 1024;
    app_ = new app(s);
    app_->start();
  }
  static void TearDownTestSuite() {
    delete app_;
    delete db_;
  }
  static long rows() { return std::stol(db_->scalar("SELECT count(*) FROM telemetry")); }
  static http_result post(const std::string& body) {
    return http_request(app_->port(), "POST", "/telemetry", body);
  }
  static std::string reading(const std::string& ts, const std::string& dev, double p, double e,
                             const std::string& extra = "") {
    return "{\"ts\":\"" + ts + "\",\"device_id\":\"" + dev + "\",\"power_w\":" +
           std::to_string(p) + ",\"energy_wh\":" + std::to_string(e) + extra + "}";
  }
  static std::string now_ts() { return format_rfc3339(now_micros()); }
  static pg_test_db* db_;
  static app* app_;
};
pg_test_db* Ingest::db_ = nullptr;
app* Ingest::app_ = nullptr;

void expect_rejected(const http_result& r, int status, const std::string& code,
                     const std::string& mention) {
  EXPECT_EQ(r.status, status) << r.body;
  auto d = parse_json(r.body);
  ASSERT_TRUE(d.HasMember("error")) << r.body;
  EXPECT_EQ(std::string(d["error"]["code"].GetString()), code) << r.body;
  EXPECT_NE(r.body.find(mention), std::string::npos) << "should mention " << mention << ": " << r.body;
}

TEST_F(Ingest, AcceptedBatchIsEntirelyVisibleWithHouseholdFromDevices) {
  auto before = rows();
  std::string body = "{\"readings\":[";
  for (int i = 0; i < 50; ++i)
    body += (i ? "," : "") + reading(format_rfc3339(now_micros() - i * 1000000), device_id(1 + i % 6),
                                     100 + i, 0.25);
  body += "]}";
  auto r = post(body);
  ASSERT_EQ(r.status, 202) << r.body;
  EXPECT_EQ(r.body, "{\"accepted\":50}");
  EXPECT_EQ(rows(), before + 50) << "202 only after the commit";
  EXPECT_EQ(db_->scalar("SELECT count(*) FROM telemetry t JOIN devices d ON d.id = t.device_id "
                        "WHERE t.household_id = d.household_id AND t.power_w >= 100 AND "
                        "t.power_w < 150 AND t.energy_wh = 0.25"),
            "50");
}

// curl sends `Expect: 100-continue` for bodies over 1 KiB and holds the body back for up to
// a second: the server answers 100 at once, or refuses without the body.
TEST_F(Ingest, Expect100ContinueIsAnsweredBeforeTheBodyOrRefusedWithoutIt) {
  auto head = [](const std::string& target, std::size_t length) {
    return "POST " + target + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
           "Content-Length: " + std::to_string(length) + "\r\nExpect: 100-continue\r\n\r\n";
  };
  std::string body = "{\"readings\":[";
  for (int i = 0; i < 20; ++i)
    body += (i ? "," : "") + reading(format_rfc3339(now_micros() - i * 1000000), device_id(1 + i % 6),
                                     7, 0.5);
  body += "]}";
  ASSERT_GT(body.size(), 1024u);
  auto before = rows();
  raw_connection c{app_->port()};
  ASSERT_TRUE(c.send(head("/telemetry", body.size())));
  auto interim = c.read_response(std::chrono::milliseconds(500));
  ASSERT_EQ(interim.status, 100) << "no 100 Continue within 500 ms";
  ASSERT_TRUE(c.send(body));
  auto r = c.read_response();
  EXPECT_EQ(r.status, 202) << r.body;
  EXPECT_EQ(rows(), before + 20);
  // Over http.body_limit (256 KiB here): 413 on the head, the body never sent.
  raw_connection big{app_->port()};
  ASSERT_TRUE(big.send(head("/telemetry", 1 << 20)));
  r = big.read_response(std::chrono::seconds(2));
  EXPECT_EQ(r.status, 413) << r.body;
  EXPECT_TRUE(big.wait_closed(std::chrono::seconds(3)));
  // No such route: 404 without the body.
  raw_connection nowhere{app_->port()};
  ASSERT_TRUE(nowhere.send(head("/telemetry/nope", body.size())));
  r = nowhere.read_response(std::chrono::seconds(2));
  EXPECT_EQ(r.status, 404) << r.body;
  EXPECT_TRUE(nowhere.wait_closed(std::chrono::seconds(3)));
}

TEST_F(Ingest, EveryInvalidBatchIsRejectedWholeAndWritesNothing) {
  auto before = rows();
  auto good = reading(now_ts(), device_id(1), 1, 1);
  expect_rejected(post("{\"readings\":[" + good + ","), 400, "invalid_readings", "malformed JSON");
  expect_rejected(post("not json"), 400, "invalid_readings", "malformed JSON");
  expect_rejected(post("{\"readings\":{}}"), 400, "invalid_readings", "readings");
  expect_rejected(post("{\"readings\":[]}"), 400, "invalid_readings", "empty");
  expect_rejected(post("{\"readings\":[" + good + ",{\"ts\":\"" + now_ts() + "\",\"device_id\":\"" +
                       device_id(1) + "\",\"power_w\":\"5\",\"energy_wh\":1}]}"),
                  400, "invalid_readings", "readings[1].power_w must be a number");
  expect_rejected(post("{\"readings\":[" + good + ",{\"ts\":\"" + now_ts() + "\",\"device_id\":\"" +
                       device_id(1) + "\",\"power_w\":NaN,\"energy_wh\":1}]}"),
                  400, "invalid_readings", "NaN");
  expect_rejected(post("{\"readings\":[{\"ts\":\"" + now_ts() + "\",\"device_id\":\"" + device_id(1) +
                       "\",\"power_w\":1,\"energy_wh\":-Infinity}]}"),
                  400, "invalid_readings", "Infinity");
  expect_rejected(post("{\"readings\":[" + good + "," + reading(now_ts(), device_id(1), 1, -2) + "]}"),
                  400, "invalid_readings", "readings[1].energy_wh must not be negative");
  expect_rejected(post("{\"readings\":[" + reading(format_rfc3339(now_micros() + 3600000000LL),
                                                   device_id(1), 1, 1) + "]}"),
                  400, "invalid_readings", "in the future");
  expect_rejected(post("{\"readings\":[" + reading("yesterday", device_id(1), 1, 1) + "]}"), 400,
                  "invalid_readings", "RFC 3339");
  expect_rejected(post("{\"readings\":[" + reading(now_ts(), "dev-1", 1, 1) + "]}"), 400,
                  "invalid_readings", "device_id");
  expect_rejected(post("{\"readings\":[{\"ts\":\"" + now_ts() + "\",\"power_w\":1,\"energy_wh\":1}]}"),
                  400, "invalid_readings", "device_id missing");
  expect_rejected(post("{\"readings\":[" + good + "," +
                       reading(now_ts(), "00000000-0000-4000-9000-000000009999", 1, 1) + "]}"),
                  422, "unknown_devices", "00000000-0000-4000-9000-000000009999");
  expect_rejected(post("{\"readings\":[" +
                       reading(now_ts(), device_id(1), 1, 1,
                               ",\"household_id\":\"" + household_id(2) + "\"") + "]}"),
                  422, "household_mismatch", device_id(1));
  auto big = "{\"readings\":[" + std::string(300 * 1024, ' ') + "]}";
  expect_rejected(post(big), 413, "body_too_large", "bytes");
  EXPECT_EQ(rows(), before) << "nothing of a rejected batch may be written";
}

// 200,000 '[' used to overflow the recursive parser's stack and take the process down.
TEST_F(Ingest, DeeplyNestedBodiesAre400InvalidJsonAndTheServerKeepsServing) {
  auto before = rows();
  std::string objects;
  for (int i = 1; i < 100; ++i)
    objects += "{\"a\":";
  objects += "{}" + std::string(99, '}');
  // Deep inside an otherwise well-formed reading: the cap applies to the whole body.
  auto hidden = "{\"readings\":[" +
                reading(now_ts(), device_id(1), 1, 1,
                        ",\"extra\":" + std::string(40, '[') + std::string(40, ']')) +
                "]}";
  for (const auto& body : {std::string(200000, '['), objects, hidden}) {
    expect_rejected(post(body), 400, "invalid_json", "nesting deeper than 32");
    EXPECT_EQ(http_get(app_->port(), "/healthz").status, 200) << "the server must survive";
  }
  EXPECT_EQ(rows(), before);
}

TEST_F(Ingest, ReadingsOlderThanMaxAgeAreRejectedNamingTheIndex) {
  auto before = rows();
  auto good = reading(now_ts(), device_id(1), 1, 1);
  auto old = reading(format_rfc3339(now_micros() - 8 * 86400 * micros_per_second), device_id(2),
                     1, 1);
  auto r = post("{\"readings\":[" + good + "," + good + "," + old + "]}");
  expect_rejected(r, 400, "invalid_readings", "readings[2].ts is more than 7d old (ingest.max_age)");
  auto d = parse_json(r.body);
  ASSERT_TRUE(d["error"]["details"].IsArray() && d["error"]["details"].Size() == 1) << r.body;
  EXPECT_EQ(d["error"]["details"][0]["index"].GetInt(), 2);
  EXPECT_EQ(std::string(d["error"]["details"][0]["field"].GetString()), "ts");
  EXPECT_EQ(rows(), before) << "nothing of a batch with one old reading may be written";
  // Inside the limit is still accepted (backfills up to max_age are legitimate).
  auto recent = reading(format_rfc3339(now_micros() - 6 * 86400 * micros_per_second),
                        device_id(2), 1, 1);
  EXPECT_EQ(post("{\"readings\":[" + recent + "]}").status, 202);
  EXPECT_EQ(rows(), before + 1);
}

TEST_F(Ingest, ConcurrentBatchesAllLandExactlyOnce) {
  auto before = rows();
  constexpr int threads = 8, batches = 10, per_batch = 100;
  std::atomic<int> accepted{0}, other{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      for (int b = 0; b < batches; ++b) {
        std::string body = "{\"readings\":[";
        for (int i = 0; i < per_batch; ++i)
          body += (i ? "," : "") +
                  reading(format_rfc3339(now_micros() - (t * 100000 + b * 1000 + i) * 1000LL),
                          device_id(1 + (t + i) % 6), 7000 + t, 0.001 * b);
        body += "]}";
        auto r = post(body);
        (r.status == 202 ? accepted : other)++;
      }
    });
  for (auto& th : pool)
    th.join();
  EXPECT_EQ(accepted.load(), threads * batches);
  EXPECT_EQ(other.load(), 0);
  EXPECT_EQ(rows(), before + threads * batches * per_batch);
  EXPECT_EQ(db_->scalar("SELECT count(*) FROM (SELECT ts, device_id FROM telemetry WHERE power_w "
                        ">= 7000 GROUP BY 1, 2 HAVING count(*) > 1) d"),
            "0")
      << "no reading stored twice";
}

TEST_F(Ingest, ASaturatedWriterAnswers503WithRetryAfter) {
  auto s = test_settings(db_->url(), "");
  s.ingest_max_pending_rows = 1;  // any batch beyond one row waits for nothing: refused
  s.ingest_writers = 1;
  app small{s};
  small.start();
  std::string body = "{\"readings\":[" + reading(now_ts(), device_id(2), 1, 1) + "," +
                     reading(now_ts(), device_id(2), 2, 1) + "]}";
  auto before = rows();
  auto r = http_request(small.port(), "POST", "/telemetry", body);
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_EQ(r.headers["retry-after"], "1");
  EXPECT_EQ(rows(), before);
}

TEST_F(Ingest, RowsWrittenBySqlClientsAndThroughTheApiAreAnsweredAlike) {
  // The write path is unchanged: a plain INSERT is picked up like an ingested reading.
  // A device of its own, so that no other test's readings share the bucket.
  db_->exec("INSERT INTO devices (id, household_id) VALUES ('" + device_id(7) + "', '" +
            household_id(3) + "')");
  auto bucket = floor_to(now_micros(), 60 * micros_per_second);
  auto t = format_rfc3339(bucket + 1000);
  db_->exec("INSERT INTO telemetry VALUES ('" + t + "', '" + device_id(7) + "', '" +
            household_id(3) + "', 4242, 1)");
  ASSERT_EQ(post("{\"readings\":[" + reading(t, device_id(7), 4343, 1) + "]}").status, 202);
  // Reads may come from the live tail's latest snapshot (up to live.interval old, and truthful
  // about it), or an answer cached for cache.live_ttl (5 s): both readings show within 10 s.
  http_result r;
  for (int i = 0; i < 100; ++i) {
    r = http_get(app_->port(), "/analytics/devices/" + device_id(7) + "/power?step=1m&start=" +
                                   format_rfc3339(bucket) + "&end=" +
                                   format_rfc3339(bucket + 60 * micros_per_second));
    ASSERT_EQ(r.status, 200);
    if (r.body.find("\"avg\":4292.5,\"max\":4343") != std::string::npos)
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_NE(r.body.find("\"avg\":4292.5,\"max\":4343"), std::string::npos) << r.body;
}

TEST_F(Ingest, AnIdempotentRetryAnswersTheFirstResultAndWritesNothing) {
  std::string body = "{\"readings\":[" + reading(now_ts(), device_id(1), 10, 0.1) + "," +
                     reading(now_ts(), device_id(2), 20, 0.2) + "]}";
  auto key = std::map<std::string, std::string>{{"Idempotency-Key", "batch-0001"}};
  auto before = rows();
  auto first = http_request(app_->port(), "POST", "/telemetry", body, key);
  ASSERT_EQ(first.status, 202) << first.body;
  EXPECT_EQ(first.body, "{\"accepted\":2}");
  EXPECT_EQ(rows(), before + 2);
  auto retry = http_request(app_->port(), "POST", "/telemetry", body, key);
  EXPECT_EQ(retry.status, 202) << retry.body;
  EXPECT_EQ(retry.body, first.body) << "the original answer";
  EXPECT_EQ(rows(), before + 2) << "a retry writes nothing";
  // The same key with another body is a client bug, not a retry.
  std::string other = "{\"readings\":[" + reading(now_ts(), device_id(3), 30, 0.3) + "]}";
  expect_rejected(http_request(app_->port(), "POST", "/telemetry", other, key), 422,
                  "idempotency_key_reused", "batch-0001");
  EXPECT_EQ(rows(), before + 2);
  // Without a key the same body is simply written again.
  EXPECT_EQ(post(body).status, 202);
  EXPECT_EQ(rows(), before + 4);
}

TEST_F(Ingest, ConcurrentRetriesWithOneKeyLandOnce) {
  std::string body = "{\"readings\":[";
  for (int i = 0; i < 20; ++i)
    body += (i ? "," : "") + reading(format_rfc3339(now_micros() - i * 1000000), device_id(1 + i % 6),
                                     1, 0.1);
  body += "]}";
  auto key = std::map<std::string, std::string>{{"Idempotency-Key", "concurrent-7"}};
  auto before = rows();
  std::vector<std::thread> clients;
  std::atomic<int> accepted{0};
  for (int t = 0; t < 8; ++t)
    clients.emplace_back([&] {
      auto r = http_request(app_->port(), "POST", "/telemetry", body, key);
      if (r.status == 202 && r.body == "{\"accepted\":20}")
        ++accepted;
    });
  for (auto& c : clients)
    c.join();
  EXPECT_EQ(accepted.load(), 8) << "every retry gets the original answer";
  EXPECT_EQ(rows(), before + 20) << "the batch is stored exactly once";
}

TEST_F(Ingest, AMalformedIdempotencyKeyIsA400) {
  std::string body = "{\"readings\":[" + reading(now_ts(), device_id(1), 10, 0.1) + "]}";
  auto before = rows();
  auto r = http_request(app_->port(), "POST", "/telemetry", body,
                        {{"Idempotency-Key", std::string(300, 'k')}});
  expect_rejected(r, 400, "invalid_idempotency_key", "Idempotency-Key");
  EXPECT_EQ(rows(), before);
}

TEST_F(Ingest, ExpiredKeysAreForgotten) {
  db_->exec("INSERT INTO ingest_idempotency (key, body_sha256, accepted, created_at) "
            "VALUES ('old-key', '\\x00', 1, now() - interval '25 hours')");
  std::string body = "{\"readings\":[" + reading(now_ts(), device_id(1), 10, 0.1) + "]}";
  auto before = rows();
  auto r = http_request(app_->port(), "POST", "/telemetry", body, {{"Idempotency-Key", "old-key"}});
  EXPECT_EQ(r.status, 202) << "a key past ingest.idempotency_ttl is new again: " << r.body;
  EXPECT_EQ(rows(), before + 1);
}

} // namespace
