// Scenario "poll" (issue 9): dashboards polling their own household's default window
// (GET /analytics/households/{id}/energy, no parameters: the last 24 h ending with the current
// 5-minute bucket), households uniform over the whole fleet, open loop at each offered rate,
// against the cache-on and the cache-off server. Per rate it also reads the server's
// joule_db_queries_total{source="pool"} before and after: PostgreSQL round trips per poll.
// With --db it then measures reading committed -> visible through the same poll.
#include <pqxx/pqxx>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <map>
#include <optional>
#include <thread>

#include "bench/load_results.hpp"
#include "bench/open_loop_client.hpp"
#include "bench/scenarios.hpp"
#include "common/hash.hpp"
#include "common/http_client.hpp"
#include "common/open_loop_schedule.hpp"
#include "common/percentiles.hpp"
#include "common/stop_signal.hpp"
#include "common/time_format.hpp"

namespace joule::bench {

namespace {

constexpr double p95_objective_ms = 10.0;

std::string poll_target(const std::string& household) {
  return "/analytics/households/" + household + "/energy";
}

// What a poll asks for (--mix): a household's default energy window (energy), or a device's
// default power window and a household's top devices, alternately (devices), or all three in
// turn (all). Returns the target and its label's index in poll_labels.
const std::vector<std::string> poll_labels = {"energy_default", "power_default", "top_default"};

std::pair<std::string, int> poll_request(const fleet_ids& ids, const std::string& mix,
                                         std::uint64_t h, std::size_t i) {
  int kind = 0;
  if (mix == "devices")
    kind = 1 + static_cast<int>(i % 2);
  else if (mix == "all")
    kind = static_cast<int>(i % 3);
  if (kind == 1)
    return {"/analytics/devices/" + ids.device_ids[h % ids.device_ids.size()] + "/power", 1};
  const auto& household = ids.household_ids[h % ids.household_ids.size()];
  if (kind == 2)
    return {"/analytics/households/" + household + "/top-devices", 2};
  return {poll_target(household), 0};
}

std::string poll_mix(const cli_args& a) {
  auto mix = a.get("mix", "energy");
  if (mix != "energy" && mix != "devices" && mix != "all")
    throw std::invalid_argument("--mix must be energy, devices or all");
  return mix;
}

// One sample of a counter in the server's /metrics (-1 when unreadable).
double scrape(const http_url& url, const std::string& series) {
  http_client c(url, std::chrono::seconds(5));
  auto r = c.get("/metrics");
  if (r.status != 200)
    return -1;
  auto at = r.body.find("\n" + series + " ");
  if (at == std::string::npos)
    return 0;
  return std::atof(r.body.c_str() + at + series.size() + 2);
}

struct poll_run {
  run_stats stats;
  double db_queries = -1;  // pool jobs during the run
  double live_queries = -1;  // live tail statements during the run (background, not per poll)
};

bool meets(const poll_run& r) {
  const auto& a = r.stats.all;
  return a.requests > 0 && a.latency.p95_ms <= p95_objective_ms &&
         static_cast<double>(a.errors()) <= 0.01 * static_cast<double>(a.requests);
}

double per_poll(const poll_run& r) {
  return r.db_queries < 0 || r.stats.all.requests == 0
             ? -1
             : r.db_queries / static_cast<double>(r.stats.all.requests);
}

std::vector<poll_run> sweep(const std::string& label, const http_url& url, const fleet_ids& ids,
                            const cli_args& a) {
  const auto rates = a.get_doubles("rates", {1000, 2000, 4000, 8000, 15000, 20000});
  const auto duration = a.get_duration("duration", std::chrono::seconds(10));
  const auto seed = static_cast<uint64_t>(a.get_int("seed", 1));
  std::vector<poll_run> runs;
  std::this_thread::sleep_for(a.get_duration("cooldown", std::chrono::seconds(5)));
  // One warm-up pass over every household: the steady state is what a fleet of dashboards
  // polling every 15-60 s sees (each settled part computed once per window).
  const auto mix = poll_mix(a);
  {
    http_client c(url, std::chrono::seconds(10));
    if (mix != "devices")
      for (auto& h : ids.household_ids)
        c.get(poll_target(h));
    if (mix != "energy") {
      for (auto& d : ids.device_ids)
        c.get("/analytics/devices/" + d + "/power");
      for (auto& h : ids.household_ids)
        c.get("/analytics/households/" + h + "/top-devices");
    }
  }
  for (double rate : rates) {
    if (stop_requested())
      break;
    auto o = load_options(a, url, rate, duration);
    open_loop_schedule schedule(rate, duration);
    std::vector<load_request> requests;
    requests.reserve(schedule.count());
    for (size_t i = 0; i < schedule.count(); ++i) {
      auto [target, kind] = poll_request(ids, mix, hash_of(seed, 0x706f6c6c, i), i);
      requests.push_back({std::move(target), kind, {}});
    }
    const auto q0 = scrape(url, "joule_db_queries_total{source=\"pool\"}");
    const auto l0 = scrape(url, "joule_db_queries_total{source=\"live_tail\"}");
    auto run = run_open_loop(o, requests);
    const auto q1 = scrape(url, "joule_db_queries_total{source=\"pool\"}");
    const auto l1 = scrape(url, "joule_db_queries_total{source=\"live_tail\"}");
    poll_run pr;
    pr.stats = summarize_run(label, run.outcomes, poll_labels, rate, run.elapsed_s);
    if (q0 >= 0 && q1 >= 0)
      pr.db_queries = q1 - q0;
    if (l0 >= 0 && l1 >= 0)
      pr.live_queries = l1 - l0;
    std::cout << format_run_table(pr.stats);
    std::printf("  DB queries per poll: %.4f (%.0f pool jobs; live tail %.0f statements in the "
                "background)\n",
                per_poll(pr), pr.db_queries, pr.live_queries);
    std::cout << std::flush;
    runs.push_back(pr);
    const auto& all = pr.stats.all;
    if (all.achieved_rate < 0.5 * rate || all.errors() * 2 > all.requests) {
      std::cout << "  (saturated: skipping higher rates for " << label << ")\n";
      break;
    }
    std::this_thread::sleep_for(std::min<std::chrono::milliseconds>(std::chrono::seconds(1), duration / 5));
  }
  return runs;
}

// Reading committed -> visible through the poll: a marker reading of the probe household is
// INSERTed, then the household's default window is polled until its bucket holds it.
struct freshness_result {
  latency_summary visible;
  uint64_t not_visible = 0;
};

std::optional<double> bucket_value(const std::string& body, unix_seconds bucket) {
  rapidjson::Document d;
  d.Parse(body.c_str());
  if (d.HasParseError() || !d.IsObject() || !d.HasMember("series"))
    return std::nullopt;
  auto want = format_rfc3339(bucket);
  for (auto& p : d["series"].GetArray())
    if (p.HasMember("t") && want == p["t"].GetString() && p["v"].IsNumber())
      return p["v"].GetDouble();
  return std::nullopt;
}

freshness_result measure_freshness(const http_url& url, const cli_args& a) {
  freshness_result out;
  pqxx::connection conn(a.get("db", ""));
  {
    pqxx::work tx(conn);
    tx.exec_params("INSERT INTO devices (id, household_id, name) VALUES ($1::uuid, $2::uuid, $3) "
                   "ON CONFLICT (id) DO NOTHING",
                   probe_device_id().to_string(), probe_household_id().to_string(),
                   "joule-bench freshness probe");
    tx.commit();
  }
  http_client client(url, std::chrono::seconds(5));
  const auto target = poll_target(probe_household_id().to_string());
  const auto samples = a.get_int("samples", 20);
  std::vector<int64_t> visible_ns;
  for (int64_t k = 0; k < samples && !stop_requested(); ++k) {
    const auto ts = static_cast<unix_seconds>(now_seconds());
    const auto bucket = floor_to(ts, 300);
    auto before = client.get(target);
    const double base = before.status == 200 ? bucket_value(before.body, bucket).value_or(0) : 0;
    const double marker = 1e6;
    {
      pqxx::work tx(conn);
      tx.exec_params("INSERT INTO telemetry (ts, device_id, household_id, power_w, energy_wh) "
                     "VALUES ($1::timestamptz, $2::uuid, $3::uuid, 1, $4)",
                     format_rfc3339(ts), probe_device_id().to_string(),
                     probe_household_id().to_string(), marker);
      tx.commit();
    }
    const double committed = now_seconds();
    bool seen = false;
    while (!seen && now_seconds() - committed < 30 && !stop_requested()) {
      auto r = client.get(target);
      if (r.status == 200) {
        auto v = bucket_value(r.body, bucket);
        if (v && *v >= base + marker - 1e-3) {
          visible_ns.push_back(static_cast<int64_t>((now_seconds() - committed) * 1e9));
          seen = true;
          break;
        }
      }
      sleep_unless_stopped(std::chrono::milliseconds(20));
    }
    if (!seen)
      ++out.not_visible;
    sleep_unless_stopped(std::chrono::milliseconds(300));
  }
  out.visible = summarize_latencies(visible_ns);
  std::printf("  committed -> visible through the poll: p50 %.3f s, p95 %.3f s, max %.3f s "
              "(%llu not visible)\n",
              out.visible.p50_ms / 1000, out.visible.p95_ms / 1000, out.visible.max_ms / 1000,
              static_cast<unsigned long long>(out.not_visible));
  return out;
}

// Resident set size of a local process in MiB (-1 when unknown).
double rss_mib(long pid) {
  std::FILE* f = std::fopen(("/proc/" + std::to_string(pid) + "/status").c_str(), "r");
  if (!f)
    return -1;
  char line[256];
  double kib = -1;
  while (std::fgets(line, sizeof line, f))
    if (std::sscanf(line, "VmRSS: %lf kB", &kib) == 1)
      break;
  std::fclose(f);
  return kib < 0 ? -1 : kib / 1024;
}

} // namespace

scenario_report run_poll_scenario(const cli_args& a) {
  const auto ids = fleet_ids_from_args(a);
  std::vector<std::pair<std::string, std::string>> servers = {{"cache", a.get("url", "")}};
  if (a.has("nocache-url"))
    servers.emplace_back("nocache", a.get("nocache-url", ""));
  if (servers.front().second.empty())
    throw std::invalid_argument("--url is required");
  std::vector<std::pair<std::string, std::vector<poll_run>>> series;
  for (const auto& [label, url] : servers) {
    if (stop_requested())
      break;
    std::cout << "poll: server " << label << " (" << ids.household_ids.size() << " households)\n";
    series.emplace_back(label, sweep(label, http_url::parse(url), ids, a));
  }
  std::optional<freshness_result> fresh;
  if (a.has("db") && !stop_requested())
    fresh = measure_freshness(http_url::parse(servers.front().second), a);
  // The tail's cost on the cache-on server: its latest cycle, the buckets it holds, and the
  // server's memory.
  const auto first = http_url::parse(servers.front().second);
  const double tail_cycle_s = scrape(first, "joule_live_tail_last_cycle_seconds");
  const double tail_buckets = scrape(first, "joule_live_tail_buckets");
  const double rss = a.has("server-pid") ? rss_mib(static_cast<long>(a.get_int("server-pid", 0))) : -1;
  std::printf("  live tail: last cycle %.1f ms, %.0f buckets; server RSS %.0f MiB\n",
              tail_cycle_s * 1000, tail_buckets, rss);

  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("scenario"); w.String("poll");
  w.Key("households"); w.Uint64(ids.household_ids.size());
  w.Key("servers"); w.StartObject();
  std::string md = "## Live-window poll (issue 9)\n\nEvery request is a dashboard's default "
                   "window: `GET /analytics/households/{id}/energy` (24 h, 5 min buckets, ending "
                   "with the current bucket), households uniform over all " +
                   std::to_string(ids.household_ids.size()) +
                   ", open loop, latency from the intended send time. DB queries per poll = "
                   "growth of the server's `joule_db_queries_total{source=\"pool\"}` / requests "
                   "(the live tail's own statements, once per `live.interval`, are listed "
                   "apart).\n\n";
  for (auto& [label, runs] : series) {
    w.Key(label.c_str());
    w.StartObject();
    double best = -1;
    for (auto& r : runs)
      if (meets(r))
        best = std::max(best, r.stats.all.achieved_rate);
    w.Key("max_answers_per_s_p95_le_10ms");
    best > 0 ? w.Double(best) : w.Null();
    w.Key("runs");
    w.StartArray();
    md += "### Server: " + label + "\n\n| offered req/s | 2xx/s | p50 ms | p95 ms | p99 ms | "
          "errors | DB queries/poll | live tail statements | p95 ≤ 10 ms |\n"
          "|---:|---:|---:|---:|---:|---:|---:|---:|---|\n";
    for (auto& r : runs) {
      w.StartObject();
      w.Key("stats");
      auto js = run_stats_json(r.stats);
      w.RawValue(js.c_str(), js.size(), rapidjson::kObjectType);
      w.Key("db_queries"); w.Double(r.db_queries);
      w.Key("db_queries_per_poll"); w.Double(per_poll(r));
      w.Key("live_tail_statements"); w.Double(r.live_queries);
      w.EndObject();
      char line[300];
      std::snprintf(line, sizeof line, "| %.0f | %.0f | %.2f | %.2f | %.2f | %llu | %.4f | %.0f | %s |\n",
                    r.stats.offered_rate, r.stats.all.achieved_rate, r.stats.all.latency.p50_ms,
                    r.stats.all.latency.p95_ms, r.stats.all.latency.p99_ms,
                    static_cast<unsigned long long>(r.stats.all.errors()), per_poll(r),
                    r.live_queries, meets(r) ? "yes" : "no");
      md += line;
    }
    w.EndArray();
    w.EndObject();
    char summary[160];
    std::snprintf(summary, sizeof summary, "\nMost answers/s with p95 ≤ 10 ms: **%s**.\n\n",
                  best > 0 ? std::to_string(static_cast<long>(best)).c_str() : "none");
    md += summary;
  }
  w.EndObject();
  w.Key("live_tail_last_cycle_ms"); w.Double(tail_cycle_s * 1000);
  w.Key("live_tail_buckets"); w.Double(tail_buckets);
  w.Key("server_rss_mib"); w.Double(rss);
  {
    char line[240];
    std::snprintf(line, sizeof line,
                  "Live tail on the cache-on server: latest cycle %.1f ms, %.0f buckets held; "
                  "server RSS %.0f MiB.\n\n",
                  tail_cycle_s * 1000, tail_buckets, rss);
    md += line;
  }
  if (fresh) {
    w.Key("committed_to_visible_s"); w.StartObject();
    w.Key("p50"); w.Double(fresh->visible.p50_ms / 1000);
    w.Key("p95"); w.Double(fresh->visible.p95_ms / 1000);
    w.Key("max"); w.Double(fresh->visible.max_ms / 1000);
    w.Key("not_visible"); w.Uint64(fresh->not_visible);
    w.EndObject();
    char line[300];
    std::snprintf(line, sizeof line,
                  "Reading committed → visible in the poll (marker INSERTed into `telemetry`, "
                  "polled every 20 ms): p50 %.3f s, p95 **%.3f s**, max %.3f s (%llu not "
                  "visible in 30 s).\n\n",
                  fresh->visible.p50_ms / 1000, fresh->visible.p95_ms / 1000,
                  fresh->visible.max_ms / 1000, static_cast<unsigned long long>(fresh->not_visible));
    md += line;
  }
  w.EndObject();
  return {buf.GetString(), md};
}

} // namespace joule::bench
