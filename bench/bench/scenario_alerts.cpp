// Scenario "alerts": a breaching reading committed in `telemetry` → the webhook received,
// with many enabled rules loaded, plus what those rules cost the server (CPU, memory) and
// how long creating and deleting them takes.
#include <pqxx/pqxx>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include "bench/alert_rules.hpp"
#include "common/http_client.hpp"
#include "bench/scenarios.hpp"
#include "bench/webhook_sink.hpp"
#include "common/hash.hpp"
#include "common/percentiles.hpp"
#include "common/stop_signal.hpp"
#include "common/time_format.hpp"

namespace joule::bench {

namespace {

constexpr double target_p95_s = 3.0;

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// The server process as /proc shows it; everything false/0 without --server-pid.
struct proc_probe {
  int64_t pid = 0;
  bool cpu_ticks(uint64_t& t) const {
    return pid > 0 && parse_proc_stat_cpu_ticks(read_text("/proc/" + std::to_string(pid) + "/stat"), t);
  }
  uint64_t rss_kb() const {
    uint64_t kb = 0;
    if (pid > 0)
      parse_vm_rss_kb(read_text("/proc/" + std::to_string(pid) + "/status"), kb);
    return kb;
  }
};

double ticks_to_percent(uint64_t from, uint64_t to, double seconds) {
  const double hz = static_cast<double>(sysconf(_SC_CLK_TCK));
  return seconds > 0 && to >= from ? 100.0 * static_cast<double>(to - from) / hz / seconds : -1;
}

struct api_totals {
  std::mutex mutex;
  uint64_t failures = 0, retries = 0;
  std::string last_error;
  void fail(const http_result& r) {
    std::lock_guard<std::mutex> lock(mutex);
    ++failures;
    last_error = r.status ? "HTTP " + std::to_string(r.status) + ": " + r.body.substr(0, 200) : r.error;
  }
};

// `call(client, i)` for i in [0, n) over `connections` keep-alive connections.
template <typename Call>
void parallel_calls(const http_url& url, size_t n, int64_t connections, Call call) {
  std::atomic<size_t> next{0};
  std::vector<std::thread> threads;
  for (int64_t c = 0; c < std::max<int64_t>(1, connections); ++c)
    threads.emplace_back([&] {
      http_client client(url, std::chrono::seconds(10));
      for (size_t i; (i = next.fetch_add(1)) < n && !stop_requested();)
        call(client, i);
    });
  for (auto& t : threads)
    t.join();
}

// Answers 503/429 are retried after Retry-After (at most 5 times).
http_result with_retries(http_client& c, const std::string& method, const std::string& target,
                         const std::string& body, api_totals& totals) {
  http_result r;
  for (int attempt = 0; attempt < 6; ++attempt) {
    r = c.request(method, target, body);
    if (r.status != 503 && r.status != 429)
      break;
    {
      std::lock_guard<std::mutex> lock(totals.mutex);
      ++totals.retries;
    }
    const double wait = r.retry_after_s > 0 ? std::min(r.retry_after_s, 5.0) : 0.2;
    sleep_unless_stopped(std::chrono::milliseconds(static_cast<int64_t>(wait * 1000)));
  }
  return r;
}

bool manager_status(http_client& client, bool& loaded, int64_t& evaluators) {
  auto r = client.get("/admin/status");
  return r.status == 200 && read_alert_manager_status(r.body, loaded, evaluators);
}

std::string table_cell(std::string text) {
  for (char& c : text)
    if (c == '|' || c == '\n' || c == '\r')
      c = ' ';
  return text.substr(0, 120);
}

std::string fmt(const char* f, double v) {
  char b[64];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

} // namespace

scenario_report run_alerts_scenario(const cli_args& a) {
  if (!a.has("url") || !a.has("db"))
    throw std::invalid_argument("alerts needs --url and --db");
  const auto url = http_url::parse(a.get("url", ""));
  const std::string db = a.get("db", "");
  const auto total_rules = a.get_int("rules", 10000);
  const auto samples = a.get_int("samples", 20);
  if (samples < 1 || total_rules < samples)
    throw std::invalid_argument("alerts needs --samples >= 1 and --rules >= --samples");
  const auto connections = a.get_int("api-connections", 8);
  const auto webhook_timeout = a.get_duration("timeout", std::chrono::seconds(15));
  const auto gap = a.get_duration("gap", std::chrono::seconds(1));
  const auto idle = a.get_duration("idle", std::chrono::seconds(10));
  const auto ready_timeout = a.get_duration("ready-timeout", std::chrono::seconds(180));
  const proc_probe server{a.get_int("server-pid", 0)};
  const auto seed = static_cast<uint64_t>(a.get_int("seed", 1));
  const double idle_s = static_cast<double>(idle.count()) / 1000;

  const auto ids = load_fleet_ids(db); // without the freshness probe household
  webhook_sink sink;
  const std::string hook = sink.url();

  // Probe devices of this run, in a household of their own.
  const uint64_t run = hash_of(static_cast<uint64_t>(now_seconds() * 1e6),
                               static_cast<uint64_t>(getpid()));
  const std::string household = uuid::from_hashes(hash_of(run, 1), hash_of(run, 2)).to_string();
  std::vector<std::string> probe_devices;
  for (int64_t k = 0; k < samples; ++k)
    probe_devices.push_back(
        uuid::from_hashes(hash_of(run, 3, static_cast<uint64_t>(k)),
                          hash_of(run, 4, static_cast<uint64_t>(k))).to_string());
  pqxx::connection conn(db);
  {
    pqxx::work tx(conn);
    for (int64_t k = 0; k < samples; ++k)
      tx.exec_params("INSERT INTO devices (id, household_id, name) VALUES ($1::uuid, $2::uuid, $3) "
                     "ON CONFLICT (id) DO NOTHING",
                     probe_devices[static_cast<size_t>(k)], household,
                     "joule-bench alerts probe " + std::to_string(k));
    tx.commit();
  }

  // Rules 0 … background-1 are background, the last `samples` the probes.
  const auto background = static_cast<size_t>(total_rules - samples);
  std::vector<std::string> bodies;
  bodies.reserve(static_cast<size_t>(total_rules));
  for (size_t k = 0; k < background; ++k)
    bodies.push_back(alert_rule_json(background_rule(ids, seed ^ run, k, hook)));
  for (const auto& d : probe_devices)
    bodies.push_back(alert_rule_json(probe_rule(d, hook)));

  http_client status_client(url, std::chrono::seconds(10));
  bool loaded = false;
  int64_t evaluators_before = 0, evaluators = 0;
  const bool status_ok = manager_status(status_client, loaded, evaluators_before);
  const uint64_t rss_before_kb = server.rss_kb();
  std::printf("alerts: %lld rules (%zu background, %lld probes) → webhook sink %s; server "
              "evaluators before: %s\n",
              static_cast<long long>(total_rules), background, static_cast<long long>(samples),
              hook.c_str(), status_ok ? std::to_string(evaluators_before).c_str() : "n/a");

  std::vector<std::string> rule_ids(bodies.size());
  api_totals create_totals, delete_totals;
  std::vector<double> latencies_s;
  uint64_t missed = 0, created = 0, deleted = 0, probe_errors = 0;
  double create_s = 0, ready_s = -1, delete_s = 0, probe_phase_s = 0;
  double idle_cpu = -1, probe_cpu = -1;
  uint64_t rss_loaded_kb = 0, rss_probe_max_kb = 0;
  std::string probe_error;

  auto body = [&] {
    // 1. Create the rules.
    const double t0 = now_seconds();
    parallel_calls(url, bodies.size(), connections, [&](http_client& c, size_t i) {
      auto r = with_retries(c, "POST", "/alerts/rules", bodies[i], create_totals);
      std::string id;
      if (r.status == 201 && read_rule_id(r.body, id))
        rule_ids[i] = id;
      else
        create_totals.fail(r);
    });
    create_s = now_seconds() - t0;
    created = static_cast<uint64_t>(std::count_if(rule_ids.begin(), rule_ids.end(),
                                                  [](const std::string& s) { return !s.empty(); }));
    std::printf("  created %llu rules in %.2f s (%.0f rules/s, %llu failed, %llu 503/429 retries)\n",
                static_cast<unsigned long long>(created), create_s,
                create_s > 0 ? static_cast<double>(created) / create_s : 0,
                static_cast<unsigned long long>(create_totals.failures),
                static_cast<unsigned long long>(create_totals.retries));
    if (!create_totals.last_error.empty())
      std::printf("  last create error: %s\n", create_totals.last_error.c_str());

    // 2. Every rule has its evaluator.
    if (status_ok) {
      const double t1 = now_seconds();
      const auto want = evaluators_before + static_cast<int64_t>(created);
      while (!stop_requested() &&
             now_seconds() - t1 < static_cast<double>(ready_timeout.count()) / 1000) {
        if (manager_status(status_client, loaded, evaluators) && loaded && evaluators >= want) {
          ready_s = now_seconds() - t1;
          break;
        }
        sleep_unless_stopped(std::chrono::milliseconds(200));
      }
      std::printf("  evaluators: %lld (want %lld) %s\n", static_cast<long long>(evaluators),
                  static_cast<long long>(want),
                  ready_s >= 0 ? ("after " + fmt("%.2f", ready_s) + " s more").c_str()
                               : "— not reached, probing anyway");
    }

    // 3. Idle with every rule loaded (also lets the feed pick the new rules up).
    uint64_t c0 = 0, c1 = 0;
    const bool cpu = server.cpu_ticks(c0);
    const double w0 = now_seconds();
    sleep_unless_stopped(idle);
    if (cpu && server.cpu_ticks(c1))
      idle_cpu = ticks_to_percent(c0, c1, now_seconds() - w0);
    rss_loaded_kb = server.rss_kb();
    if (server.pid > 0)
      std::printf("  server idle over %.0f s: %.1f %% of one core, RSS %.1f MiB (before rules "
                  "%.1f MiB)\n", idle_s, idle_cpu, static_cast<double>(rss_loaded_kb) / 1024,
                  static_cast<double>(rss_before_kb) / 1024);

    // 4. Probes: one breaching reading each, committed (autocommit), then its webhook.
    const bool cpu2 = server.cpu_ticks(c0);
    const double p0 = now_seconds();
    pqxx::nontransaction autocommit(conn);
    for (int64_t k = 0; k < samples && !stop_requested(); ++k) {
      const auto& rule = rule_ids[background + static_cast<size_t>(k)];
      if (rule.empty()) {
        ++missed;
        continue;
      }
      double committed = 0;
      try {
        autocommit.exec_params(
            "INSERT INTO telemetry (ts, device_id, household_id, power_w, energy_wh) "
            "VALUES (now(), $1::uuid, $2::uuid, 5e6, 0)",
            probe_devices[static_cast<size_t>(k)], household);
        committed = now_seconds();
      } catch (const std::exception& e) {
        ++probe_errors;
        ++missed;
        probe_error = e.what();
        continue;
      }
      auto got = sink.wait_for(rule, "firing", webhook_timeout);
      if (got) {
        latencies_s.push_back(got->system_s - committed);
        std::printf("  probe %lld: %.3f s\n", static_cast<long long>(k + 1), latencies_s.back());
      } else {
        ++missed;
        std::printf("  probe %lld: no webhook in %.0f s\n", static_cast<long long>(k + 1),
                    static_cast<double>(webhook_timeout.count()) / 1000);
      }
      rss_probe_max_kb = std::max(rss_probe_max_kb, server.rss_kb());
      // gap × [0.5, 1.5): a fixed spacing would phase-lock the probes to the feed cycle.
      const double jitter = 0.5 + unit_interval(hash_of(run, 5, static_cast<uint64_t>(k)));
      sleep_unless_stopped(std::chrono::milliseconds(
          static_cast<int64_t>(static_cast<double>(gap.count()) * jitter)));
    }
    probe_phase_s = now_seconds() - p0;
    if (cpu2 && server.cpu_ticks(c1))
      probe_cpu = ticks_to_percent(c0, c1, probe_phase_s);
  };

  auto cleanup = [&] {
    const double t0 = now_seconds();
    std::vector<size_t> todo;
    for (size_t i = 0; i < rule_ids.size(); ++i)
      if (!rule_ids[i].empty())
        todo.push_back(i);
    std::atomic<uint64_t> ok{0};
    parallel_calls(url, todo.size(), connections, [&](http_client& c, size_t j) {
      auto r = with_retries(c, "DELETE", "/alerts/rules/" + rule_ids[todo[j]], "", delete_totals);
      if (r.status == 204 || r.status == 404)
        ++ok;
      else
        delete_totals.fail(r);
    });
    deleted = ok.load();
    try {
      pqxx::work tx(conn);
      tx.exec_params("DELETE FROM devices WHERE household_id = $1::uuid", household);
      tx.commit();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "joule-bench: deleting the probe devices: %s\n", e.what());
    }
    delete_s = now_seconds() - t0;
    std::printf("  deleted %llu rules and %lld probe devices in %.2f s (%llu failed)\n",
                static_cast<unsigned long long>(deleted), static_cast<long long>(samples),
                delete_s, static_cast<unsigned long long>(delete_totals.failures));
  };
  try {
    body();
  } catch (...) {
    cleanup();
    throw;
  }
  cleanup();

  std::vector<int64_t> ns;
  for (double s : latencies_s)
    ns.push_back(static_cast<int64_t>(s * 1e9));
  const auto lat = summarize_latencies(ns);
  const bool meets = lat.count > 0 && missed == 0 && lat.p95_ms / 1000 <= target_p95_s;
  std::printf("  commit → webhook: p50 %.3f s, p95 %.3f s, max %.3f s (%llu received, %llu "
              "missed) — target p95 ≤ %.0f s: %s\n  webhooks received in total: %llu\n",
              lat.p50_ms / 1000, lat.p95_ms / 1000, lat.max_ms / 1000,
              static_cast<unsigned long long>(lat.count), static_cast<unsigned long long>(missed),
              target_p95_s, meets ? "met" : "NOT met",
              static_cast<unsigned long long>(sink.received()));
  if (server.pid > 0)
    std::printf("  server during probes: %.1f %% of one core, max RSS %.1f MiB\n", probe_cpu,
                static_cast<double>(rss_probe_max_kb) / 1024);
  if (!probe_error.empty())
    std::printf("  last probe error: %s\n", probe_error.c_str());

  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("scenario"); w.String("alerts");
  w.Key("rules"); w.Int64(total_rules);
  w.Key("background_rules"); w.Uint64(background);
  w.Key("probe_rules"); w.Int64(samples);
  w.Key("api_connections"); w.Int64(connections);
  w.Key("rules_created"); w.Uint64(created);
  w.Key("create_failures"); w.Uint64(create_totals.failures);
  w.Key("create_retries_503"); w.Uint64(create_totals.retries);
  w.Key("create_seconds"); w.Double(create_s);
  w.Key("create_rules_per_second"); w.Double(create_s > 0 ? static_cast<double>(created) / create_s : 0);
  w.Key("last_create_error"); w.String(create_totals.last_error);
  w.Key("evaluators_before"); status_ok ? w.Int64(evaluators_before) : w.Null();
  w.Key("evaluators"); status_ok ? w.Int64(evaluators) : w.Null();
  w.Key("evaluators_ready_seconds"); ready_s >= 0 ? w.Double(ready_s) : w.Null();
  w.Key("commit_to_webhook_s"); w.StartObject();
  w.Key("received"); w.Uint64(lat.count);
  w.Key("missed"); w.Uint64(missed);
  w.Key("p50"); w.Double(lat.p50_ms / 1000);
  w.Key("p95"); w.Double(lat.p95_ms / 1000);
  w.Key("max"); w.Double(lat.max_ms / 1000);
  w.Key("timeout_s"); w.Double(static_cast<double>(webhook_timeout.count()) / 1000);
  w.EndObject();
  w.Key("target_p95_s"); w.Double(target_p95_s);
  w.Key("meets_target"); w.Bool(meets);
  w.Key("probe_errors"); w.Uint64(probe_errors);
  w.Key("webhooks_received"); w.Uint64(sink.received());
  w.Key("server"); 
  if (server.pid > 0) {
    w.StartObject();
    w.Key("pid"); w.Int64(server.pid);
    w.Key("idle_window_s"); w.Double(idle_s);
    w.Key("idle_cpu_percent"); idle_cpu >= 0 ? w.Double(idle_cpu) : w.Null();
    w.Key("probe_phase_s"); w.Double(probe_phase_s);
    w.Key("probe_cpu_percent"); probe_cpu >= 0 ? w.Double(probe_cpu) : w.Null();
    w.Key("rss_before_kb"); w.Uint64(rss_before_kb);
    w.Key("rss_loaded_kb"); w.Uint64(rss_loaded_kb);
    w.Key("rss_probe_max_kb"); w.Uint64(rss_probe_max_kb);
    w.EndObject();
  } else {
    w.String("n/a");
  }
  w.Key("rules_deleted"); w.Uint64(deleted);
  w.Key("delete_failures"); w.Uint64(delete_totals.failures);
  w.Key("delete_seconds"); w.Double(delete_s);
  w.EndObject();

  auto mib = [](uint64_t kb) { return fmt("%.1f", static_cast<double>(kb) / 1024); };
  auto pct = [](double p) { return p >= 0 ? fmt("%.1f", p) : std::string("n/a"); };
  const bool pid = server.pid > 0;
  std::string md = "## Alerts (reading committed → webhook received)\n\n" +
      std::to_string(total_rules) + " enabled rules (" + std::to_string(background) +
      " background rules that never trip, device/household × 1m/5m, on random fleet ids; " +
      std::to_string(samples) + " probe rules `power_w_max > 1e6`, 1m, cooldown 0, each on its "
      "own new device). Each probe INSERTs one 5 MW reading (autocommit); latency runs from the "
      "INSERT returning to the webhook arriving at joule-bench's receiver (target p95 ≤ 3 s).\n\n"
      "| p50 s | p95 s | max s | received | missed | target met |\n|---:|---:|---:|---:|---:|---|\n| " +
      fmt("%.3f", lat.p50_ms / 1000) + " | " + fmt("%.3f", lat.p95_ms / 1000) + " | " +
      fmt("%.3f", lat.max_ms / 1000) + " | " + std::to_string(lat.count) + " | " +
      std::to_string(missed) + " | " + (meets ? "yes" : "**no**") + " |\n\n"
      "| create rules s (rules/s) | evaluators ready after s | delete rules s | server CPU idle % "
      "(" + fmt("%.0f", idle_s) + " s) | server CPU during probes % | RSS before → loaded → "
      "probes MiB |\n|---:|---:|---:|---:|---:|---|\n| " +
      fmt("%.2f", create_s) + " (" + fmt("%.0f", create_s > 0 ? static_cast<double>(created) / create_s : 0) +
      ") | " + (ready_s >= 0 ? fmt("%.2f", ready_s) : std::string("n/a")) + " | " +
      fmt("%.2f", delete_s) + " | " + (pid ? pct(idle_cpu) : "n/a") + " | " +
      (pid ? pct(probe_cpu) : "n/a") + " | " +
      (pid ? mib(rss_before_kb) + " → " + mib(rss_loaded_kb) + " → " + mib(rss_probe_max_kb) : "n/a") +
      " |\n\n";
  if (create_totals.failures || delete_totals.failures || !probe_error.empty())
    md += "Errors: " + std::to_string(create_totals.failures) + " create, " +
          std::to_string(delete_totals.failures) + " delete, " + std::to_string(probe_errors) +
          " probe; last: " +
          table_cell(!create_totals.last_error.empty() ? create_totals.last_error
                     : !delete_totals.last_error.empty() ? delete_totals.last_error : probe_error) +
          "\n\n";
  return {buf.GetString(), md};
}

} // namespace joule::bench
