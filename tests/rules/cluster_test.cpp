// Owned work (issue 11 §3) over real HTTP and PostgreSQL: three instances on one database —
// two in-process apps and one real `joule serve` process that is killed with SIGKILL — and a
// real webhook receiver. Rules created through one instance reach the others within 2 s, each
// rule is owned by exactly one instance, a breach fires once, a killed owner's rules move
// within 2 x alerts.lease and a joining instance takes its share.

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <sstream>

#include "tests/rules/alerts_fixture.hpp"
#include "tests/rules/webhook_receiver.hpp"
#include "tests/support/redis_process.hpp"
#include "tests/support/tcp_proxy.hpp"

namespace joule::rules::test {
namespace {

using namespace std::chrono_literals;

constexpr auto lease = 2s;

struct instance_view {
  bool ok = false;
  std::string id;
  std::set<std::string> owned;
  std::int64_t count = 0;
  std::int64_t peers = -1;
};

instance_view instance_of(std::uint16_t port) {
  instance_view v;
  auto r = joule::test::http_request(port, "GET", "/admin/status", "");
  if (r.status != 200)
    return v;
  rapidjson::Document d;
  d.Parse(r.body.c_str());
  if (d.HasParseError() || !d.IsObject() || !d.HasMember("instance") || !d["instance"].IsObject())
    return v;
  auto& i = d["instance"];
  if (!i.HasMember("id") || !i.HasMember("owned_rules") || !i.HasMember("owned_rule_count") ||
      !i.HasMember("peers") || !i.HasMember("lease_sec"))
    return v;
  v.id = i["id"].GetString();
  for (auto& x : i["owned_rules"].GetArray())
    v.owned.insert(x.GetString());
  v.count = i["owned_rule_count"].GetInt64();
  v.peers = i["peers"].GetInt64();
  v.ok = true;
  return v;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

class Cluster : public ::testing::Test {
protected:
  void SetUp() override {
    if (!std::getenv("JOULE_TEST_PG"))
      GTEST_SKIP() << "JOULE_TEST_PG is not set";
    db = &shared_db();
    db->exec("DELETE FROM alert_rules");
    // Instances of earlier tests in this database (they left, or expire within seconds).
    db->exec("DELETE FROM alert_instances");
    tag = std::to_string(::getpid());
    a = start_app("a-" + tag);
    b = start_app("b-" + tag);
    start_process("c-" + tag);
  }

  void TearDown() override {
    kill_process();
    for (auto* p : {&a, &b, &d})
      if (*p) {
        (*p)->stop();
        p->reset();
      }
    if (db) {
      db->exec("DELETE FROM alert_rules");
      db->exec("UPDATE alert_notifications SET delivery = 'failed' WHERE delivery = 'pending'");
      db->exec("DELETE FROM alert_instances");
    }
  }

  config::settings settings_for(const std::string& id) const {
    config::settings s;
    s.db_url = db->url();
    s.redis_url = "";
    s.http_listen = "127.0.0.1:0";
    s.db_pool_size = 4;
    s.alerts_feed_interval = 200ms;
    s.alerts_webhook_timeout = 1000ms;
    s.alerts_retry_initial = 100ms;
    s.alerts_retry_max = 400ms;
    s.alerts_allowed_hosts = "127.0.0.1";
    s.alerts_allow_private_targets = true;
    s.auth_required = false;
    s.alerts_lease = lease;
    s.cluster_instance_id = id;
    return s;
  }

  std::unique_ptr<joule::app> start_app(const std::string& id, const std::string& url = {}) {
    auto s = settings_for(id);
    if (!url.empty()) {
      s.db_url = url;
      s.db_reconnect_backoff_max = 300ms;
    }
    auto app = std::make_unique<joule::app>(s);
    app->start();
    return app;
  }

  void start_process(const std::string& id) {
    c_port = joule::test::free_port();
    log_path = "/tmp/joule_cluster_test_" + tag + ".log";
    auto pid_path = log_path + ".pid";
    auto cmd = "env JOULE_DB_URL='" + db->url() +
               "' JOULE_REDIS_URL= JOULE_LOG_LEVEL=warn JOULE_HTTP_LISTEN=127.0.0.1:" +
               std::to_string(c_port) +
               " JOULE_AUTH_REQUIRED=false JOULE_DB_POOL_SIZE=4 JOULE_ALERTS_FEED_INTERVAL=200ms"
               " JOULE_ALERTS_ALLOWED_HOSTS=127.0.0.1 JOULE_ALERTS_ALLOW_PRIVATE_TARGETS=true"
               " JOULE_ALERTS_LEASE=2s JOULE_CLUSTER_INSTANCE_ID=" + id + " " JOULE_BIN
               " serve >" + log_path + " 2>&1 & echo $! >" + pid_path;
    ASSERT_EQ(std::system(cmd.c_str()), 0);
    c_pid = std::stoi(slurp(pid_path));
    ASSERT_TRUE(eventually([&] {
      return joule::test::http_request(c_port, "GET", "/readyz", "").status == 200;
    }, 20s)) << slurp(log_path);
  }

  void kill_process() {
    if (c_pid <= 0)
      return;
    ::kill(c_pid, SIGKILL);
    ::waitpid(c_pid, nullptr, 0);  // not our child (started by a shell): returns at once
    for (int i = 0; i < 100 && ::kill(c_pid, 0) == 0; ++i)
      std::this_thread::sleep_for(20ms);
    c_pid = -1;
  }

  std::vector<std::uint16_t> ports() const {
    std::vector<std::uint16_t> out;
    for (auto* p : {&a, &b, &d})
      if (*p)
        out.push_back((*p)->port());
    if (c_pid > 0)
      out.push_back(c_port);
    return out;
  }

  /// Every instance answers, sees the others, and together they own exactly `rules`, each
  /// rule once.
  bool partitioned(const std::set<std::string>& rules, std::map<std::string, std::string>* owner = nullptr) {
    auto ps = ports();
    std::map<std::string, std::string> by_rule;
    std::int64_t sum = 0;
    for (auto port : ps) {
      auto v = instance_of(port);
      if (!v.ok || v.peers != static_cast<std::int64_t>(ps.size()) - 1)
        return false;
      sum += v.count;
      for (auto& r : v.owned)
        if (!by_rule.emplace(r, v.id).second)
          return false;  // two owners
    }
    if (sum != static_cast<std::int64_t>(rules.size()) || by_rule.size() != rules.size())
      return false;
    for (auto& r : rules)
      if (!by_rule.count(r))
        return false;
    if (owner)
      *owner = by_rule;
    return true;
  }

  /// The instances on `ps` together own exactly `rules`, each once (peers not checked).
  bool owned_by(const std::vector<std::uint16_t>& ps, const std::set<std::string>& rules) {
    std::set<std::string> seen;
    std::int64_t sum = 0;
    for (auto port : ps) {
      auto v = instance_of(port);
      if (!v.ok)
        return false;
      sum += v.count;
      for (auto& r : v.owned)
        if (!seen.insert(r).second)
          return false;
    }
    return sum == static_cast<std::int64_t>(rules.size()) && seen == rules;
  }

  std::pair<std::string, std::string> new_device() {
    auto dev = random_uuid();
    auto household = random_uuid();
    db->exec("INSERT INTO devices (id, household_id) VALUES ('" + dev + "', '" + household + "')");
    return {dev, household};
  }

  void reading(const std::string& dev, const std::string& household, double power_w) {
    db->exec("INSERT INTO telemetry (ts, device_id, household_id, power_w, energy_wh) VALUES "
             "(now(), '" + dev + "', '" + household + "', " + std::to_string(power_w) + ", 1)");
  }

  std::string create_rule(std::uint16_t port, const std::string& dev, std::uint16_t hook) {
    auto body = "{\"scope\":\"device\",\"scope_id\":\"" + dev +
                "\",\"metric\":\"power_w_max\",\"window\":\"1m\",\"op\":\">\",\"value\":1000,"
                "\"cooldown_sec\":3600,\"webhook_url\":\"http://127.0.0.1:" +
                std::to_string(hook) + "/hook\",\"webhook_secret\":\"s\"}";
    auto r = joule::test::http_request(port, "POST", "/alerts/rules", body);
    EXPECT_EQ(r.status, 201) << r.body;
    auto doc = json(r.body);
    return doc.IsObject() && doc.HasMember("id") ? doc["id"].GetString() : "";
  }

  /// Deliveries received for `rule_id`: their alert ids and how many POSTs.
  std::pair<std::set<std::string>, int> deliveries(const webhook_receiver& hook,
                                                   const std::string& rule_id) const {
    std::set<std::string> ids;
    int n = 0;
    for (auto& w : hook.requests()) {
      if (w.body.find(rule_id) == std::string::npos)
        continue;
      ids.insert(w.alert_id);
      ++n;
    }
    return {ids, n};
  }

  /// A breach of `rule_id` (on `dev`) is delivered exactly once, with one alert id.
  void expect_fires_once(const webhook_receiver& hook, const std::string& rule_id,
                         const std::pair<std::string, std::string>& dev) {
    reading(dev.first, dev.second, 5000);
    ASSERT_TRUE(eventually([&] { return deliveries(hook, rule_id).second >= 1; }, 10s))
        << "the breach of " << rule_id << " was not delivered";
    // Several feed cycles of every instance: a second evaluator would have fired by now.
    std::this_thread::sleep_for(2s);
    auto [ids, n] = deliveries(hook, rule_id);
    EXPECT_EQ(n, 1) << rule_id;
    EXPECT_EQ(ids.size(), 1u) << rule_id;
    auto events = joule::test::http_request(a->port(), "GET",
                                            "/alerts/events?rule_id=" + rule_id, "");
    auto doc = json(events.body);
    ASSERT_TRUE(doc.IsObject() && doc.HasMember("events"));
    EXPECT_EQ(doc["events"].Size(), 1u) << events.body;  // one notification stored
  }

  /// Creates `n` rules through instance A, one device each.
  void create_rules(int n, std::uint16_t hook) {
    for (int i = 0; i < n; ++i) {
      auto dev = new_device();
      auto id = create_rule(a->port(), dev.first, hook);
      rules.insert(id);
      device_of[id] = dev;
    }
  }

  joule::test::pg_test_db* db = nullptr;
  std::string tag, log_path;
  std::unique_ptr<joule::app> a, b, d;
  pid_t c_pid = -1;
  std::uint16_t c_port = 0;
  std::set<std::string> rules;
  std::map<std::string, std::pair<std::string, std::string>> device_of;
};

TEST_F(Cluster, RulesReachEveryInstanceEachHasOneOwnerAndABreachFiresOnce) {
  webhook_receiver hook;
  ASSERT_TRUE(eventually([&] { return partitioned({}); }, 15s)) << "instances do not see each other";
  auto t0 = std::chrono::steady_clock::now();
  create_rules(30, hook.port());
  std::map<std::string, std::string> owner;
  // Rules created through A are loaded (and owned) by B and C within 2 s.
  ASSERT_TRUE(eventually([&] { return partitioned(rules, &owner); }, 2s))
      << "30 rules not partitioned over 3 instances within 2 s";
  auto took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::map<std::string, int> per;
  for (auto& [r, o] : owner)
    ++per[o];
  EXPECT_EQ(per.size(), 3u) << "every instance takes a share";
  std::printf("[cluster] 30 rules created through A partitioned over %zu instances %.2f s after "
              "the first POST (a: %d, b: %d, c: %d)\n",
              per.size(), took, per["a-" + tag], per["b-" + tag], per["c-" + tag]);

  // A breach of a rule owned by C (the separate process) and one owned by B: once each.
  std::string on_b, on_c;
  for (auto& [r, o] : owner) {
    if (o == "b-" + tag && on_b.empty())
      on_b = r;
    if (o == "c-" + tag && on_c.empty())
      on_c = r;
  }
  ASSERT_FALSE(on_b.empty());
  ASSERT_FALSE(on_c.empty());
  expect_fires_once(hook, on_c, device_of[on_c]);
  expect_fires_once(hook, on_b, device_of[on_b]);

  // Changed through A: C (its owner) evaluates the new threshold within 2 s.
  std::string raised;
  for (auto& [r, o] : owner)
    if (o == "c-" + tag && r != on_c && raised.empty())
      raised = r;
  ASSERT_FALSE(raised.empty());
  auto dev = device_of[raised];
  auto put = joule::test::http_request(
      a->port(), "PUT", "/alerts/rules/" + raised,
      "{\"scope\":\"device\",\"scope_id\":\"" + dev.first +
          "\",\"metric\":\"power_w_max\",\"window\":\"1m\",\"op\":\">\",\"value\":10000,"
          "\"cooldown_sec\":3600,\"webhook_url\":\"http://127.0.0.1:" +
          std::to_string(hook.port()) + "/hook\",\"webhook_secret\":\"s\"}");
  ASSERT_EQ(put.status, 200) << put.body;
  std::this_thread::sleep_for(2s);
  reading(dev.first, dev.second, 5000);  // above the old threshold only
  std::this_thread::sleep_for(2s);
  EXPECT_EQ(deliveries(hook, raised).second, 0) << "the owner still used the old threshold";
  reading(dev.first, dev.second, 20000);
  EXPECT_TRUE(eventually([&] { return deliveries(hook, raised).second == 1; }, 10s));

  // Deleted through A: C (its owner) stops evaluating it within 2 s.
  std::string victim;
  for (auto& [r, o] : owner)
    if (o == "c-" + tag && r != on_c && r != raised)
      victim = r;
  ASSERT_FALSE(victim.empty());
  ASSERT_EQ(joule::test::http_request(a->port(), "DELETE", "/alerts/rules/" + victim, "").status,
            204);
  rules.erase(victim);
  EXPECT_TRUE(eventually([&] { return partitioned(rules); }, 2s));
  EXPECT_EQ(instance_of(c_port).owned.count(victim), 0u);

  // Changed by plain SQL (the trigger announces it too): disabled, then enabled again. The
  // first as an operator would write it, without bumping the version (a trigger does).
  auto sql_rule = on_b;
  db->exec("UPDATE alert_rules SET enabled = false WHERE id = '" + sql_rule + "'");
  rules.erase(sql_rule);
  EXPECT_TRUE(eventually([&] { return partitioned(rules); }, 2s)) << "SQL disable not seen";
  db->exec("UPDATE alert_rules SET enabled = true, version = version + 1 WHERE id = '" +
           sql_rule + "'");
  rules.insert(sql_rule);
  EXPECT_TRUE(eventually([&] { return partitioned(rules); }, 2s)) << "SQL enable not seen";
}

TEST_F(Cluster, AKilledOwnersRulesMoveWithinTwoLeasesAndAJoinerTakesItsShare) {
  webhook_receiver hook;
  ASSERT_TRUE(eventually([&] { return partitioned({}); }, 15s)) << "instances do not see each other";
  create_rules(30, hook.port());
  std::map<std::string, std::string> owner;
  ASSERT_TRUE(eventually([&] { return partitioned(rules, &owner); }, 2s));
  std::string moved;
  for (auto& [r, o] : owner)
    if (o == "c-" + tag)
      moved = r;
  ASSERT_FALSE(moved.empty());

  std::string in_gap;  // breached while nobody evaluates it: notified after the hand-over
  for (auto& [r, o] : owner)
    if (o == "c-" + tag && r != moved)
      in_gap = r;
  ASSERT_FALSE(in_gap.empty());

  auto t0 = std::chrono::steady_clock::now();
  kill_process();  // kill -9: no goodbye, its leases run out
  reading(device_of[in_gap].first, device_of[in_gap].second, 5000);
  ASSERT_TRUE(eventually([&] { return partitioned(rules, &owner); }, 2 * lease))
      << "the killed instance's rules did not move within 2 x lease";
  auto took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("[cluster] kill -9 of an owner: its rules owned elsewhere after %.2f s (lease "
              "%lld s)\n",
              took, static_cast<long long>(lease.count()));
  EXPECT_NE(owner[moved], "c-" + tag);
  EXPECT_NE(owner[in_gap], "c-" + tag);
  ASSERT_TRUE(eventually([&] { return deliveries(hook, in_gap).second >= 1; }, 10s))
      << "a breach during the hand-over was lost";
  expect_fires_once(hook, moved, device_of[moved]);
  EXPECT_EQ(deliveries(hook, in_gap).second, 1);
  EXPECT_EQ(deliveries(hook, in_gap).first.size(), 1u);

  // A joining instance takes a share; still exactly one owner per rule.
  d = start_app("d-" + tag);
  ASSERT_TRUE(eventually([&] { return partitioned(rules, &owner); }, 10s));
  int on_d = 0;
  for (auto& [r, o] : owner)
    on_d += o == "d-" + tag;
  EXPECT_GT(on_d, 0);
  std::printf("[cluster] a joining instance took %d of %zu rules\n", on_d, rules.size());
}

// An instance that loses the database fences itself: it stops evaluating before its lease can
// run out, the others take its rules (a breach meanwhile fires once), and it takes its share
// again when the database is back.
TEST_F(Cluster, AnInstanceCutFromTheDatabaseStopsEvaluatingAndRejoins) {
  auto pg_port = static_cast<std::uint16_t>(std::stoi(std::getenv("JOULE_TEST_PGPORT")));
  joule::test::tcp_proxy proxy{pg_port};
  auto url = db->url();
  url.replace(url.find("port="), url.find(' ', url.find("port=")) - url.find("port="),
              "port=" + std::to_string(proxy.port()));
  d = start_app("d-" + tag, url);
  webhook_receiver hook;
  ASSERT_TRUE(eventually([&] { return partitioned({}); }, 15s)) << "instances do not see each other";
  create_rules(30, hook.port());
  std::map<std::string, std::string> owner;
  ASSERT_TRUE(eventually([&] { return partitioned(rules, &owner); }, 3s));
  std::string on_d;
  for (auto& [r, o] : owner)
    if (o == "d-" + tag)
      on_d = r;
  ASSERT_FALSE(on_d.empty()) << "d owns nothing";

  auto t0 = std::chrono::steady_clock::now();
  proxy.cut();
  // D stops evaluating within its lease; A, B and C own everything within 2 x lease.
  EXPECT_TRUE(eventually([&] { return instance_of(d->port()).count == 0; }, lease));
  ASSERT_TRUE(eventually([&] { return owned_by({a->port(), b->port(), c_port}, rules); },
                         2 * lease));
  std::printf("[cluster] instance cut from the database: its rules owned elsewhere after "
              "%.2f s\n",
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  expect_fires_once(hook, on_d, device_of[on_d]);

  proxy.restore();
  EXPECT_TRUE(eventually([&] { return partitioned(rules, &owner); }, 15s))
      << "d did not rejoin";
  int back = 0;
  for (auto& [r, o] : owner)
    back += o == "d-" + tag;
  EXPECT_GT(back, 0);
  EXPECT_EQ(deliveries(hook, on_d).second, 1);  // rejoining fires nothing again
}

} // namespace
} // namespace joule::rules::test
