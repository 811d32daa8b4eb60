// `joule token create|list|revoke` and `joule serve` as the operator runs them: the built
// binary as a subprocess against a private database. The secret is the last line of stdout,
// never in `token list`, the server log or the database; revocation by the CLI reaches a
// running server within 5 s; auth.required=false is refused off loopback.
#include <gtest/gtest.h>

#include <csignal>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <thread>

#include <sys/wait.h>
#include <unistd.h>

#include "core/auth.hpp"
#include "tests/support/api_fixture.hpp"

using namespace joule;
using namespace joule::test;

namespace {

std::string quote(const std::string& arg) {
  std::string q = "'";
  for (char c : arg)
    q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct run_result {
  int code = -1;
  std::string out, err;
  std::string last_line() const {
    auto t = out;
    while (!t.empty() && t.back() == '\n')
      t.pop_back();
    auto nl = t.rfind('\n');
    return nl == std::string::npos ? t : t.substr(nl + 1);
  }
};

class TokenCli : public ::testing::Test {
protected:
  static void SetUpTestSuite() {
    db_ = new pg_test_db("joule_test_authcli");
    seed_fleet(*db_, 2, 2, 1, 300);
  }
  static void TearDownTestSuite() { delete db_; }

  /// Runs `joule ARGS` against the test database; `env` is extra VAR=value words.
  static run_result joule(const std::string& args, const std::string& env = "") {
    auto err_path = "/tmp/joule_auth_cli_" + std::to_string(::getpid()) + ".err";
    auto cmd = "env JOULE_DB_URL=" + quote(db_->url()) + " JOULE_REDIS_URL= " + env + " " +
               JOULE_BIN + " " + args + " 2>" + err_path;
    run_result r;
    FILE* p = popen(cmd.c_str(), "r");
    if (!p)
      return r;
    char buf[4096];
    std::size_t n = 0;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0)
      r.out.append(buf, n);
    int status = pclose(p);
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r.err = slurp(err_path);
    std::remove(err_path.c_str());
    return r;
  }

  static pg_test_db* db_;
};
pg_test_db* TokenCli::db_ = nullptr;

TEST_F(TokenCli, CreateListRevoke) {
  auto created = joule("token create --scope read,ingest --household " + household_id(1) +
                       " --household " + household_id(2) + " --expires-in 12h --name 'kitchen panel'");
  ASSERT_EQ(created.code, 0) << created.err;
  auto secret = created.last_line();
  EXPECT_TRUE(auth::well_formed(secret)) << created.out;
  auto idpos = created.out.find("id: ");
  ASSERT_NE(idpos, std::string::npos) << created.out;
  auto id = created.out.substr(idpos + 4, 36);
  EXPECT_NE(created.out.find("households: " + household_id(1) + "," + household_id(2)),
            std::string::npos)
      << created.out;

  // Two tokens never share a secret.
  auto other = joule("token create --scope admin");
  ASSERT_EQ(other.code, 0) << other.err;
  EXPECT_NE(other.last_line(), secret);

  auto list = joule("token list");
  ASSERT_EQ(list.code, 0) << list.err;
  auto line_start = list.out.find(id);
  ASSERT_NE(line_start, std::string::npos) << list.out;
  auto line = list.out.substr(line_start, list.out.find('\n', line_start) - line_start);
  EXPECT_NE(line.find("kitchen panel"), std::string::npos) << line;
  EXPECT_NE(line.find("read,ingest"), std::string::npos) << line;
  EXPECT_NE(line.find("\tactive\t"), std::string::npos) << line;
  EXPECT_EQ(list.out.find(secret), std::string::npos) << "the secret is listed";
  EXPECT_EQ(list.out.find(secret.substr(3, 16)), std::string::npos);
  EXPECT_EQ(list.out.find(auth::to_hex(auth::sha256(secret))), std::string::npos);

  auto revoked = joule("token revoke " + id);
  EXPECT_EQ(revoked.code, 0) << revoked.err;
  EXPECT_NE(joule("token list").out.find("\trevoked\t"), std::string::npos);
  auto again = joule("token revoke " + id);
  EXPECT_EQ(again.code, 0);
  EXPECT_NE(again.out.find("already"), std::string::npos) << again.out;
  auto unknown = joule("token revoke 00000000-0000-4000-8000-00000000abcd");
  EXPECT_EQ(unknown.code, 1);
  EXPECT_NE(unknown.err.find("no token"), std::string::npos) << unknown.err;
}

TEST_F(TokenCli, BadInputIsAClearMessageAndANonZeroExit) {
  struct bad_case {
    std::string args, mention;
  };
  for (auto& c : std::vector<bad_case>{
           {"token create", "--scope is required"},
           {"token create --scope superuser", "unknown scope 'superuser'"},
           {"token create --scope read,", "unknown scope ''"},
           {"token create --scope read --household nope", "--household 'nope' is not a UUID"},
           {"token create --scope read --expires-in soon", "--expires-in 'soon'"},
           {"token create --scope read --expires-in 0s", "--expires-in '0s'"},
           {"token create --scope read --name " + std::string(201, 'x'), "--name"},
           {"token create --scope read extra", "unexpected argument 'extra'"},
           {"token revoke", "name one token id"},
           {"token revoke 42", "'42' is not a token id"},
           {"token", "expected create, list or revoke"},
           {"token frobnicate", "expected create, list or revoke"},
           {"token list --scope read", "belong to `joule token create`"},
           {"migrate --scope read", "belong to `joule token create`"},
       }) {
    auto r = joule(c.args);
    EXPECT_NE(r.code, 0) << c.args;
    EXPECT_NE(r.err.find(c.mention), std::string::npos) << c.args << " said: " << r.err;
    EXPECT_EQ(r.out.find("jl_"), std::string::npos) << c.args;
  }
  EXPECT_EQ(db_->scalar("SELECT count(*) FROM api_tokens WHERE name = 'x'"), "0");
}

TEST_F(TokenCli, AuthRequiredFalseIsRefusedOffLoopback) {
  for (auto& listen : {"0.0.0.0:0", "[::]:0", "192.0.2.1:0", "example.com:0"}) {
    auto r = joule(std::string("serve --auth.required=false --http.listen=") + listen);
    EXPECT_EQ(r.code, 2) << listen;
    EXPECT_NE(r.err.find("auth.required"), std::string::npos) << listen << ": " << r.err;
    EXPECT_NE(r.err.find("loopback"), std::string::npos) << r.err;
  }
  // Through the environment too (the setting named, whatever its source).
  auto r = joule("serve", "JOULE_AUTH_REQUIRED=false JOULE_HTTP_LISTEN=0.0.0.0:0");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("auth.required"), std::string::npos) << r.err;
}

// A real `joule serve` with debug logging: tokens made by the CLI and over REST, used, revoked
// by the CLI (the server notices within 5 s), and not a trace of any secret in its log or the
// database.
TEST_F(TokenCli, ServerHonoursCliTokensAndNeverLogsSecrets) {
  auto port = free_port();
  auto log_path = "/tmp/joule_auth_cli_server_" + std::to_string(::getpid()) + ".log";
  auto pid_path = log_path + ".pid";
  auto cmd = "env JOULE_DB_URL=" + quote(db_->url()) +
             " JOULE_REDIS_URL= JOULE_LOG_LEVEL=debug JOULE_HTTP_LISTEN=127.0.0.1:" +
             std::to_string(port) + " JOULE_AUTH_REFRESH_INTERVAL=1s JOULE_ALERTS_ENABLED=false " +
             JOULE_BIN + " serve >" + log_path + " 2>&1 & echo $! >" + pid_path;
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  pid_t pid = std::stoi(slurp(pid_path));
  struct stopper {
    pid_t pid;
    ~stopper() {
      ::kill(pid, SIGTERM);
      for (int i = 0; i < 100 && ::kill(pid, 0) == 0; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      ::kill(pid, SIGKILL);
    }
  } stop{pid};
  bool up = false;
  for (int i = 0; i < 200 && !up; ++i) {
    up = http_get(port, "/readyz").status == 200;
    if (!up)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(up) << slurp(log_path);

  auto admin = joule("token create --scope admin --name ops").last_line();
  auto read_run = joule("token create --scope read --household " + household_id(1));
  auto read = read_run.last_line();
  auto read_id = read_run.out.substr(read_run.out.find("id: ") + 4, 36);
  ASSERT_TRUE(auth::well_formed(admin) && auth::well_formed(read));
  auto energy = [&](const std::string& h) {
    return http_request_with(port, "GET", "/analytics/households/" + h + "/energy", "", bearer(read));
  };
  EXPECT_EQ(http_get(port, "/analytics/households/" + household_id(1) + "/energy").status, 401);
  EXPECT_EQ(energy(household_id(1)).status, 200);
  EXPECT_EQ(energy(household_id(2)).status, 404);
  EXPECT_EQ(http_request_with(port, "GET", "/metrics", "", bearer(read)).status, 403);
  EXPECT_EQ(http_request_with(port, "GET", "/metrics", "", bearer(admin)).status, 200);
  auto made = http_request_with(port, "POST", "/admin/tokens", "{\"scopes\":[\"ingest\"]}", bearer(admin));
  ASSERT_EQ(made.status, 201) << made.body;
  auto made_json = parse_json(made.body);
  std::string rest_secret = made_json["token"].GetString(), rest_id = made_json["id"].GetString();
  EXPECT_EQ(http_request_with(port, "POST", "/telemetry", "{\"readings\":[]}", bearer(rest_secret)).status,
            400);  // authenticated; an empty batch is the usual 400
  EXPECT_EQ(http_request_with(port, "DELETE", "/admin/tokens/" + rest_id, "", bearer(admin)).status, 204);
  EXPECT_EQ(http_request_with(port, "GET", "/metrics", "", bearer(admin + "A")).status, 401);

  // Revoked by the CLI: the running server stops accepting it within 5 s.
  ASSERT_EQ(joule("token revoke " + read_id).code, 0);
  auto t0 = std::chrono::steady_clock::now();
  double took = -1;
  while (std::chrono::steady_clock::now() - t0 < std::chrono::seconds(7)) {
    if (energy(household_id(1)).status == 401) {
      took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_GE(took, 0) << "still accepted 7 s after `joule token revoke`";
  EXPECT_LE(took, 5.0);
  // Let a last-use flush happen, then stop the server so its whole log is written.
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  ::kill(pid, SIGTERM);
  for (int i = 0; i < 100 && ::kill(pid, 0) == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));

  auto log_text = slurp(log_path);
  EXPECT_NE(log_text.find(rest_id), std::string::npos) << "token ids are logged:\n" << log_text;
  auto rows = db_->scalar("SELECT string_agg(t::text, E'\\n') FROM api_tokens t");
  for (auto& s : {admin, read, rest_secret}) {
    EXPECT_EQ(log_text.find(s.substr(3)), std::string::npos) << "a secret is in the server log";
    EXPECT_EQ(rows.find(s.substr(3, 20)), std::string::npos) << "a secret is in the database";
    EXPECT_NE(rows.find(auth::to_hex(auth::sha256(s))), std::string::npos);
  }
  std::remove(log_path.c_str());
  std::remove(pid_path.c_str());
}

} // namespace
