// Scenario "raw-vs-rollup": the same requests, closed loop and one at a time, against a
// server answering from rollups and one answering from raw rows; interleaved request by
// request so both see the same machine load.
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cstdio>
#include <iostream>

#include "bench/dashboard_mix.hpp"
#include "bench/response_fields.hpp"
#include "bench/scenarios.hpp"
#include "common/hash.hpp"
#include "common/http_client.hpp"
#include "common/percentiles.hpp"
#include "common/stop_signal.hpp"

namespace joule::bench {

namespace {

struct side {
  std::vector<int64_t> latencies_ns;
  uint64_t errors = 0, hits = 0;
  std::string shape_problem; // first contract violation seen
  latency_summary summary;
};

void measure(http_client& client, dashboard_endpoint e, const std::string& target, side& s) {
  auto r = client.get(target);
  s.latencies_ns.push_back(r.elapsed.count());
  if (r.status < 200 || r.status >= 300) {
    ++s.errors;
    if (s.shape_problem.empty())
      s.shape_problem = r.status ? "HTTP " + std::to_string(r.status) : r.error;
    return;
  }
  s.hits += r.x_cache == "hit";
  if (s.shape_problem.empty())
    s.shape_problem = check_response_shape(e, r.body);
}

double ratio(double raw, double rollup) { return rollup > 0 ? raw / rollup : 0; }

} // namespace

scenario_report run_raw_vs_rollup_scenario(const cli_args& a) {
  if (!a.has("url") || !a.has("raw-url"))
    throw std::invalid_argument("raw-vs-rollup needs --url (rollups) and --raw-url (raw rows)");
  const auto ids = fleet_ids_from_args(a);
  const auto timeout = a.get_duration("timeout", std::chrono::seconds(30));
  const auto per_endpoint = static_cast<size_t>(a.get_int("requests", 30));
  const auto budget_s = static_cast<double>(a.get_duration("max-time", std::chrono::seconds(180)).count()) / 1000;
  const auto seed = static_cast<uint64_t>(a.get_int("seed", 1));
  http_client rollup(http_url::parse(a.get("url", "")), timeout);
  http_client raw(http_url::parse(a.get("raw-url", "")), timeout);

  const auto now = static_cast<unix_seconds>(now_seconds());
  const double started = now_seconds();
  // One more row after the dashboard endpoints: 24 h of 5 min energy over windows no dashboard
  // polls (each ending 1-4 h ago, a different one per request), so the rollup side reads its
  // rows from PostgreSQL instead of the settled parts a polled window finds in memory.
  const int cold_row = dashboard_endpoint_count;
  auto names = dashboard_endpoint_names();
  names.push_back("energy_5m_24h_cold");
  const int rows = dashboard_endpoint_count + 1;
  std::vector<side> rollup_sides(rows), raw_sides(rows);
  bool out_of_time = false;
  for (int ei = 0; ei < rows && !out_of_time; ++ei) {
    const bool cold = ei == cold_row;
    const auto e = cold ? dashboard_endpoint::energy_5m_24h : static_cast<dashboard_endpoint>(ei);
    const bool per_device = e == dashboard_endpoint::power_1m_1h;
    for (size_t i = 0; i <= per_endpoint; ++i) {
      if (stop_requested() || now_seconds() - started > budget_s) {
        out_of_time = true;
        break;
      }
      uint64_t pick = hash_of(seed, 0x7276, static_cast<uint64_t>(ei), i);
      const auto& id = per_device ? ids.device_ids[pick % ids.device_ids.size()]
                                  : ids.household_ids[pick % ids.household_ids.size()];
      auto target = dashboard_target(e, id, now);
      if (cold) {
        const unix_seconds end = ceil_to(now, 300) - 3600 - static_cast<unix_seconds>(i % 36) * 300;
        target = "/analytics/households/" + id + "/energy?start=" + format_rfc3339(end - 86400) +
                 "&end=" + format_rfc3339(end) + "&step=5m";
      }
      side scratch;
      // Request 0 only warms connections and plans; it is not measured.
      measure(rollup, e, target, i == 0 ? scratch : rollup_sides[static_cast<size_t>(ei)]);
      measure(raw, e, target, i == 0 ? scratch : raw_sides[static_cast<size_t>(ei)]);
    }
  }

  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("scenario"); w.String("raw-vs-rollup");
  w.Key("incomplete"); w.Bool(out_of_time);
  w.Key("endpoints"); w.StartObject();
  std::string md = "## Raw rows vs rollups (closed loop, sequential)\n\n"
                   "| endpoint | n | rollup p50 ms | rollup p95 ms | raw p50 ms | raw p95 ms | "
                   "speed-up p50 | speed-up p95 | errors rollup/raw | notes |\n"
                   "|---|---:|---:|---:|---:|---:|---:|---:|---|---|\n";
  std::printf("raw-vs-rollup (closed loop, one request at a time)\n"
              "  %-14s %5s %10s %10s %10s %10s %8s %8s %s\n", "endpoint", "n", "roll p50",
              "roll p95", "raw p50", "raw p95", "x p50", "x p95", "errors");
  for (int ei = 0; ei < rows; ++ei) {
    auto& r = rollup_sides[static_cast<size_t>(ei)];
    auto& q = raw_sides[static_cast<size_t>(ei)];
    r.summary = summarize_latencies(r.latencies_ns);
    q.summary = summarize_latencies(q.latencies_ns);
    const auto& name = names[static_cast<size_t>(ei)];
    const double x50 = ratio(q.summary.p50_ms, r.summary.p50_ms);
    const double x95 = ratio(q.summary.p95_ms, r.summary.p95_ms);
    std::string notes;
    if (!r.shape_problem.empty())
      notes += "rollup: " + r.shape_problem + "; ";
    if (!q.shape_problem.empty())
      notes += "raw: " + q.shape_problem + "; ";
    if (r.hits + q.hits > 0)
      notes += "X-Cache hit " + std::to_string(r.hits) + "/" + std::to_string(q.hits) +
               " (rollup/raw: settled parts from memory, or an answer cache); ";
    std::printf("  %-14s %5llu %10.2f %10.2f %10.2f %10.2f %8.1f %8.1f %llu/%llu %s\n", name.c_str(),
                static_cast<unsigned long long>(r.summary.count), r.summary.p50_ms, r.summary.p95_ms,
                q.summary.p50_ms, q.summary.p95_ms, x50, x95,
                static_cast<unsigned long long>(r.errors), static_cast<unsigned long long>(q.errors),
                notes.c_str());
    char line[600];
    std::snprintf(line, sizeof line, "| %s | %llu | %.2f | %.2f | %.2f | %.2f | %.1f× | %.1f× | %llu/%llu | %s |\n",
                  name.c_str(), static_cast<unsigned long long>(r.summary.count), r.summary.p50_ms,
                  r.summary.p95_ms, q.summary.p50_ms, q.summary.p95_ms, x50, x95,
                  static_cast<unsigned long long>(r.errors), static_cast<unsigned long long>(q.errors),
                  notes.c_str());
    md += line;
    w.Key(name.c_str());
    w.StartObject();
    w.Key("n"); w.Uint64(r.summary.count);
    w.Key("rollup_p50_ms"); w.Double(r.summary.p50_ms);
    w.Key("rollup_p95_ms"); w.Double(r.summary.p95_ms);
    w.Key("raw_p50_ms"); w.Double(q.summary.p50_ms);
    w.Key("raw_p95_ms"); w.Double(q.summary.p95_ms);
    w.Key("speedup_p50"); w.Double(x50);
    w.Key("speedup_p95"); w.Double(x95);
    w.Key("rollup_errors"); w.Uint64(r.errors);
    w.Key("raw_errors"); w.Uint64(q.errors);
    w.Key("notes"); w.String(notes);
    w.EndObject();
  }
  w.EndObject();
  w.EndObject();
  if (out_of_time)
    md += "\n(stopped early: time budget or signal)\n";
  return {buf.GetString(), md + "\n"};
}

} // namespace joule::bench
