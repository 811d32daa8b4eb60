// Scenario "read": the dashboard mix, open loop, at each offered rate, against the server
// with its cache and (optionally) one without.
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <thread>

#include "bench/dashboard_mix.hpp"
#include "bench/load_results.hpp"
#include "bench/open_loop_client.hpp"
#include "bench/scenarios.hpp"
#include "common/open_loop_schedule.hpp"
#include "common/stop_signal.hpp"

namespace joule::bench {

namespace {

constexpr double p95_objective_ms = 10.0;

bool meets_objective(const run_stats& r) {
  return r.all.requests > 0 && r.all.latency.p95_ms <= p95_objective_ms &&
         static_cast<double>(r.all.errors()) <= 0.01 * static_cast<double>(r.all.requests);
}

// Where the latency curve bends: the first rate whose p95 exceeds twice the lowest rate's
// p95 (+1 ms, so sub-millisecond noise does not count) or that the server no longer keeps
// up with (2xx rate below 90 % of offered). -1 when the curve never bends.
double knee_rate(const std::vector<run_stats>& runs) {
  if (runs.empty())
    return -1;
  const double base = runs.front().all.latency.p95_ms;
  for (const auto& r : runs)
    if (r.all.latency.p95_ms > 2 * base + 1.0 || r.all.achieved_rate < 0.9 * r.offered_rate)
      return r.offered_rate;
  return -1;
}

struct server_series {
  std::string label;
  std::vector<run_stats> runs;
};

std::vector<run_stats> sweep(const std::string& label, const http_url& url, const fleet_ids& ids,
                             const cli_args& a) {
  const auto rates = a.get_doubles("rates", {1000, 2000, 5000, 10000, 20000});
  const auto duration = a.get_duration("duration", std::chrono::seconds(10));
  const auto seed = static_cast<uint64_t>(a.get_int("seed", 1));
  std::vector<run_stats> runs;
  // A previous sweep may have left a server saturated (queued database jobs, open requests);
  // they share PostgreSQL with this one, so let them drain before measuring.
  std::this_thread::sleep_for(a.get_duration("cooldown", std::chrono::seconds(5)));
  for (double rate : rates) {
    if (stop_requested())
      break;
    auto o = load_options(a, url, rate, duration);
    open_loop_schedule schedule(rate, duration);
    auto requests = make_dashboard_mix(ids, schedule.count(), seed,
                                       static_cast<unix_seconds>(now_seconds()));
    auto run = run_open_loop(o, requests);
    runs.push_back(summarize_run(label, run.outcomes, dashboard_endpoint_names(), rate, run.elapsed_s));
    std::cout << format_run_table(runs.back()) << std::flush;
    const auto& all = runs.back().all;
    // Past saturation every higher rate only queues more: stop the sweep there.
    if (all.achieved_rate < 0.5 * rate || all.errors() * 2 > all.requests) {
      std::cout << "  (saturated: skipping higher rates for " << label << ")\n";
      break;
    }
    // Let the server's queues drain between rates.
    std::this_thread::sleep_for(std::min<std::chrono::milliseconds>(std::chrono::seconds(1), duration / 5));
  }
  return runs;
}

std::string series_markdown(const server_series& s) {
  std::string md = "### Server: " + s.label + "\n\n";
  md += "| offered req/s | 2xx/s | p50 ms | p95 ms | p99 ms | max ms | errors | cache hit/miss/bypass | p95 ≤ 10 ms |\n";
  md += "|---:|---:|---:|---:|---:|---:|---:|---|---|\n";
  for (const auto& r : s.runs) {
    char line[300];
    std::snprintf(line, sizeof line, "| %.0f | %.0f | %.2f | %.2f | %.2f | %.2f | %llu | %llu/%llu/%llu | %s |\n",
                  r.offered_rate, r.all.achieved_rate, r.all.latency.p50_ms, r.all.latency.p95_ms,
                  r.all.latency.p99_ms, r.all.latency.max_ms,
                  static_cast<unsigned long long>(r.all.errors()),
                  static_cast<unsigned long long>(r.all.cache_hit),
                  static_cast<unsigned long long>(r.all.cache_miss),
                  static_cast<unsigned long long>(r.all.cache_bypass),
                  meets_objective(r) ? "yes" : "no");
    md += line;
  }
  md += "\n";
  double best = -1;
  const run_stats* best_run = nullptr;
  for (const auto& r : s.runs)
    if (meets_objective(r) && r.offered_rate > best) {
      best = r.offered_rate;
      best_run = &r;
    }
  char summary[200];
  double knee = knee_rate(s.runs);
  std::snprintf(summary, sizeof summary,
                "Highest offered rate with p95 ≤ 10 ms and ≤ 1 %% errors: **%s**; knee: **%s**.\n\n",
                best > 0 ? std::to_string(static_cast<long>(best)).c_str() : "none",
                knee > 0 ? std::to_string(static_cast<long>(knee)).c_str() : "not reached");
  md += summary;
  if (best_run)
    md += "Per endpoint at that rate:\n\n" + format_run_markdown(*best_run);
  return md;
}

} // namespace

scenario_report run_read_scenario(const cli_args& a) {
  const auto ids = fleet_ids_from_args(a);
  std::vector<std::pair<std::string, std::string>> servers = {{"cache", a.get("url", "")}};
  if (a.has("nocache-url"))
    servers.emplace_back("nocache", a.get("nocache-url", ""));
  if (servers.front().second.empty())
    throw std::invalid_argument("--url is required");

  std::vector<server_series> series;
  for (const auto& [label, url] : servers) {
    if (stop_requested())
      break;
    series.push_back({label, sweep(label, http_url::parse(url), ids, a)});
  }

  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("scenario"); w.String("read");
  w.Key("p95_objective_ms"); w.Double(p95_objective_ms);
  w.Key("servers"); w.StartObject();
  std::string md = "## Read mix (open loop)\n\nDashboard mix (energy 5m/24h, energy 1h/7d, "
                   "top-devices, power 1m/1h; uniform households/devices), latency measured from "
                   "the intended send time.\n\n";
  for (const auto& s : series) {
    w.Key(s.label.c_str());
    w.StartObject();
    double best = -1;
    for (const auto& r : s.runs)
      if (meets_objective(r))
        best = std::max(best, r.offered_rate);
    w.Key("max_rate_p95_le_10ms");
    best > 0 ? w.Double(best) : w.Null();
    double knee = knee_rate(s.runs);
    w.Key("knee_rate");
    knee > 0 ? w.Double(knee) : w.Null();
    w.Key("runs");
    w.StartArray();
    for (const auto& r : s.runs) {
      auto json = run_stats_json(r);
      w.RawValue(json.c_str(), json.size(), rapidjson::kObjectType);
    }
    w.EndArray();
    w.EndObject();
    md += series_markdown(s);
  }
  w.EndObject();
  w.EndObject();
  return {buf.GetString(), md};
}

} // namespace joule::bench
