// Operator comforts as pure functions: log lines (text and JSON, request ids, no line
// injection), request id acceptance, secret redaction of settings, the status summary, and
// progress lines of long jobs.
#include <gtest/gtest.h>

#include <rapidjson/document.h>

#include <algorithm>
#include <cstdio>
#include <functional>

#include "actors/status_cli.hpp"
#include "config/settings.hpp"
#include "core/log.hpp"
#include "core/progress.hpp"
#include "http/request_log.hpp"

using namespace joule;

namespace {

std::string captured(const std::function<void()>& f) {
  testing::internal::CaptureStderr();
  f();
  return testing::internal::GetCapturedStderr();
}

struct format_guard {
  ~format_guard() {
    set_log_format(log_format::text);
    set_log_level(log_level::info);
    set_access_log(false);
  }
};

} // namespace

TEST(Logging, TextLinesStayOneLineAndCarryTheRequestId) {
  format_guard g;
  auto out = captured([] {
    request_scope scope{"req-1"};
    log(log_level::warn, "http", "bad\nline", {{"status", "400", true}});
  });
  EXPECT_NE(out.find(" warn http: bad?line request_id=req-1 status=400\n"), std::string::npos)
      << out;
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1);
  // Outside the scope there is no request id.
  EXPECT_EQ(captured([] { log(log_level::info, "x", "y"); }).find("request_id"),
            std::string::npos);
}

TEST(Logging, JsonLinesParseWithTheirFields) {
  format_guard g;
  set_log_format(log_format::json);
  auto out = captured([] {
    request_scope scope{"abc"};
    log(log_level::error, "access", "quote \" backslash \\ tab \t ctl \x01",
        {{"status", "503", true}, {"route", "energy"}});
  });
  ASSERT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
  rapidjson::Document d;
  d.Parse(out.c_str());
  ASSERT_FALSE(d.HasParseError()) << out;
  EXPECT_STREQ(d["level"].GetString(), "error");
  EXPECT_STREQ(d["component"].GetString(), "access");
  EXPECT_STREQ(d["msg"].GetString(), "quote \" backslash \\ tab \t ctl \x01");
  EXPECT_STREQ(d["request_id"].GetString(), "abc");
  EXPECT_EQ(d["status"].GetInt(), 503);
  EXPECT_STREQ(d["route"].GetString(), "energy");
  EXPECT_TRUE(d["ts"].IsString());
}

// Bytes from a client (a request target, a header) need not be UTF-8: a log line must stay
// JSON (encoding validated), keep well-formed UTF-8 as it is and mark the rest U+FFFD.
TEST(Logging, InvalidUtf8BecomesAReplacementCharacterAndTheLineStaysJson) {
  EXPECT_EQ(json_quote("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x8c"),
            "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x8c\"");
  EXPECT_EQ(json_quote("/x\xff\xfe"), "\"/x\\ufffd\\ufffd\"");
  EXPECT_EQ(json_quote("\xc3"), "\"\\ufffd\"");                  // cut short
  EXPECT_EQ(json_quote("\xc0\xaf"), "\"\\ufffd\\ufffd\"");       // overlong '/'
  EXPECT_EQ(json_quote("\xed\xa0\x80"), "\"\\ufffd\\ufffd\\ufffd\"");  // a surrogate
  EXPECT_EQ(json_quote("\xf4\x90\x80\x80"), "\"\\ufffd\\ufffd\\ufffd\\ufffd\"");  // > U+10FFFF
  format_guard g;
  set_log_format(log_format::json);
  auto out = captured([] { log(log_level::info, "access", "GET /\xff\x80/e\xc3\xa9"); });
  rapidjson::Document d;
  d.Parse<rapidjson::kParseValidateEncodingFlag>(out.c_str());
  ASSERT_FALSE(d.HasParseError()) << out;
  EXPECT_STREQ(d["msg"].GetString(), "GET /\xef\xbf\xbd\xef\xbf\xbd/e\xc3\xa9");
}

TEST(Logging, LevelFiltersAndParses) {
  format_guard g;
  set_log_level(log_level::warn);
  EXPECT_TRUE(captured([] { log(log_level::info, "x", "hidden"); }).empty());
  EXPECT_FALSE(captured([] { log(log_level::error, "x", "shown"); }).empty());
  EXPECT_EQ(parse_log_level("debug"), log_level::debug);
  EXPECT_FALSE(parse_log_level("loud"));
  EXPECT_EQ(parse_log_format("json"), log_format::json);
  EXPECT_FALSE(parse_log_format("xml"));
}

TEST(RequestId, SaneIdsAreKeptOthersReplaced) {
  http::request r;
  r.headers = {{"x-request-id", "trace-01.ab:CD_9"}};
  EXPECT_EQ(http::request_id_for(r), "trace-01.ab:CD_9");
  for (std::string bad : {std::string(""), std::string(129, 'a'), std::string("a b"),
                          std::string("a\"b"), std::string("x\r\nSet-Cookie: y"),
                          std::string("é")}) {
    r.headers = {{"X-Request-Id", bad}};
    auto id = http::request_id_for(r);
    EXPECT_NE(id, bad);
    EXPECT_EQ(id.size(), 16u) << id;
    EXPECT_TRUE(http::sane_request_id(id));
  }
  r.headers.clear();
  EXPECT_NE(http::request_id_for(r), http::request_id_for(r));
  EXPECT_TRUE(http::sane_request_id(std::string(128, 'z')));
}

TEST(RequestId, EchoedAndLoggedOnce) {
  format_guard g;
  set_log_format(log_format::json);
  set_access_log(true);
  http::access_entry e{"rid-7", "GET", "/metrics?x=1", "127.0.0.1",
                       std::chrono::steady_clock::now()};
  http::response r;
  r.status = 401;
  r.body = "12345";
  r.route = "metrics";
  auto out = captured([&] { http::finish_response(e, r); });
  ASSERT_EQ(r.headers.size(), 1u);
  EXPECT_EQ(r.headers[0].first, "X-Request-Id");
  EXPECT_EQ(r.headers[0].second, "rid-7");
  rapidjson::Document d;
  d.Parse(out.c_str());
  ASSERT_FALSE(d.HasParseError()) << out;
  EXPECT_STREQ(d["request_id"].GetString(), "rid-7");
  EXPECT_EQ(d["status"].GetInt(), 401);
  EXPECT_EQ(d["bytes"].GetInt(), 5);
  EXPECT_STREQ(d["target"].GetString(), "/metrics?x=1");
  EXPECT_STREQ(d["token_id"].GetString(), "-");
  EXPECT_TRUE(d["duration_ms"].IsNumber());
  set_access_log(false);
  http::response r2;
  EXPECT_TRUE(captured([&] { http::finish_response(e, r2); }).empty());
  EXPECT_EQ(r2.headers.size(), 1u);  // the id is echoed with the access log off too
}

TEST(Redaction, PasswordsAndSecretsNeverShow) {
  using config::redact;
  EXPECT_EQ(redact("db.url", "postgresql://joule:s3cret@db:5432/joule"),
            "postgresql://joule:***@db:5432/joule");
  EXPECT_EQ(redact("db.url", "postgresql://joule@db/joule?sslmode=require&password=s3cret"),
            "postgresql://joule@db/joule?sslmode=require&password=***");
  EXPECT_EQ(redact("db.url", "host=db user=joule password=s3cret dbname=joule"),
            "host=db user=joule password=*** dbname=joule");
  EXPECT_EQ(redact("db.url", "host=db password = 'se cr\\'et' dbname=joule"),
            "host=db password = *** dbname=joule");
  EXPECT_EQ(redact("redis.url", "redis://:s3cret@cache:6379"), "redis://:***@cache:6379");
  EXPECT_EQ(redact("redis.url", "redis://cache:6379"), "redis://cache:6379");
  EXPECT_EQ(redact("alerts.webhook_secret", "s3cret"), "***");
  EXPECT_EQ(redact("db.pool_size", "4"), "4");
  config::settings s;
  s.db_url = "postgresql://u:hunter2@h/d";
  for (auto& [k, v] : config::redacted(s))
    EXPECT_EQ(v.find("hunter2"), std::string::npos) << k;
  EXPECT_EQ(config::redacted(s).size(), config::options().size());
}

TEST(Settings, LiveKeysAreSettings) {
  for (auto& k : config::live_keys()) {
    bool found = false;
    for (auto& o : config::options())
      found = found || o.key == k;
    EXPECT_TRUE(found) << k;
  }
}

TEST(StatusCli, SummaryFlattensTheStatus) {
  auto out = summarize_status(
      R"({"db_pool":{"workers":4,"busy":1},"cache":{"breaker":"closed"},)"
      R"("supervisor":{"db_pool":{"running":true,"restarts":2},"cache":{"running":false,"restarts":1}},)"
      R"("refresh.device_1m":{"watermark":"2026-12-01T16:28:00Z","x":{"y":1}}})");
  EXPECT_NE(out.find("db_pool: workers=4 busy=1\n"), std::string::npos) << out;
  EXPECT_NE(out.find("cache: breaker=closed\n"), std::string::npos) << out;
  EXPECT_NE(out.find("actors: running=1 not_running=cache restarts=3\n"), std::string::npos)
      << out;
  EXPECT_NE(out.find("refresh.device_1m: watermark=2026-12-01T16:28:00Z x.y=1\n"),
            std::string::npos)
      << out;
  EXPECT_NE(summarize_status("nope").find("unreadable"), std::string::npos);
}

namespace {

std::string run_meter(bool tty, const std::function<void(progress_meter&)>& f) {
  FILE* out = std::tmpfile();
  {
    progress_meter m{"job", 1000, out, tty};
    f(m);
  }
  std::rewind(out);
  std::string text;
  char buf[512];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, out)) > 0;)
    text.append(buf, n);
  std::fclose(out);
  return text;
}

} // namespace

TEST(Progress, LinesSayRowsRateAndEta) {
  EXPECT_EQ(format_eta(12.4), "12s");
  EXPECT_EQ(format_eta(185), "3m 05s");
  EXPECT_EQ(format_eta(3720), "1h 02m");
  EXPECT_EQ(format_eta(-1), "?");
  EXPECT_EQ(progress_line("backfill", 0.25, 250, 1000, 10),
            "backfill: 25.0% | 250 / 1000 rows | 25 rows/s | ETA 30s");
  EXPECT_EQ(progress_line("refresh device_1m", 0.5, 40, 0, 4),
            "refresh device_1m: 50.0% | 40 rows | 10 rows/s | ETA 4s");
  EXPECT_EQ(progress_line("x", 1, 10, 0, 65), "x: 100.0% | 10 rows | 0 rows/s | done in 1m 05s");
  EXPECT_EQ(progress_line("x", 0, 0, 0, 1), "x: 0.0% | 0 rows | 0 rows/s | ETA ?");
}

TEST(Progress, PlainLinesWithoutATerminalRedrawnOnOne) {
  // Not a terminal: whole lines, no carriage returns or escapes; at most one per interval
  // (10 s), and the final state once.
  auto plain = run_meter(false, [](progress_meter& m) {
    m.update(0.1, 100);
    m.update(0.2, 200);  // within the interval: not printed
    m.finish(1, 1000);
  });
  EXPECT_EQ(plain.find('\r'), std::string::npos) << plain;
  EXPECT_EQ(plain.find('\x1b'), std::string::npos) << plain;
  EXPECT_EQ(std::count(plain.begin(), plain.end(), '\n'), 2) << plain;
  EXPECT_NE(plain.find("job: 10.0% | 100 / 1000 rows"), std::string::npos) << plain;
  EXPECT_NE(plain.find("job: 100.0% | 1000 / 1000 rows"), std::string::npos) << plain;
  // A terminal: one line redrawn in place, ended by the final newline.
  auto tty = run_meter(true, [](progress_meter& m) {
    m.update(0.1, 100);
    m.finish(1, 1000);
  });
  EXPECT_EQ(tty.rfind("\rjob: 10.0%", 0), 0u) << tty;
  EXPECT_NE(tty.find("\x1b[K\rjob: 100.0%"), std::string::npos) << tty;
  EXPECT_EQ(std::count(tty.begin(), tty.end(), '\n'), 1) << tty;
  EXPECT_EQ(tty.back(), '\n');
}
