#include "bench/load_results.hpp"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cstdio>

namespace joule::bench {

namespace {

void add(endpoint_stats& s, const request_outcome& o) {
  ++s.requests;
  if (o.status >= 200 && o.status < 300)
    ++s.ok;
  else if (o.status != 0)
    ++s.non_2xx;
  else if (o.timed_out)
    ++s.timeouts;
  else
    ++s.conn_errors;
  if (o.status != 0)
    ++s.statuses[o.status];
  switch (o.cache) {
    case cache_outcome::hit: ++s.cache_hit; break;
    case cache_outcome::miss: ++s.cache_miss; break;
    case cache_outcome::bypass: ++s.cache_bypass; break;
    case cache_outcome::none: break;
  }
}

void finish(endpoint_stats& s, std::vector<int64_t>& latencies, double elapsed_s) {
  s.latency = summarize_latencies(latencies);
  s.achieved_rate = elapsed_s > 0 ? static_cast<double>(s.ok) / elapsed_s : 0;
}

std::string table_line(const endpoint_stats& s, bool markdown) {
  char buf[400];
  const char* fmt = markdown
                        ? "| %s | %llu | %.0f | %.2f | %.2f | %.2f | %.2f | %llu | %llu | %llu/%llu/%llu |\n"
                        : "  %-14s %8llu %9.0f %8.2f %8.2f %8.2f %9.2f %7llu %7llu %9llu/%llu/%llu\n";
  std::snprintf(buf, sizeof buf, fmt, s.name.c_str(), static_cast<unsigned long long>(s.requests),
                s.achieved_rate, s.latency.p50_ms, s.latency.p95_ms, s.latency.p99_ms,
                s.latency.max_ms, static_cast<unsigned long long>(s.non_2xx),
                static_cast<unsigned long long>(s.timeouts + s.conn_errors),
                static_cast<unsigned long long>(s.cache_hit),
                static_cast<unsigned long long>(s.cache_miss),
                static_cast<unsigned long long>(s.cache_bypass));
  return buf;
}

template <class Writer>
void write_endpoint(Writer& w, const endpoint_stats& s) {
  w.StartObject();
  w.Key("requests"); w.Uint64(s.requests);
  w.Key("ok"); w.Uint64(s.ok);
  w.Key("non_2xx"); w.Uint64(s.non_2xx);
  w.Key("timeouts"); w.Uint64(s.timeouts);
  w.Key("connection_errors"); w.Uint64(s.conn_errors);
  w.Key("errors"); w.Uint64(s.errors());
  w.Key("achieved_rate"); w.Double(s.achieved_rate);
  w.Key("p50_ms"); w.Double(s.latency.p50_ms);
  w.Key("p95_ms"); w.Double(s.latency.p95_ms);
  w.Key("p99_ms"); w.Double(s.latency.p99_ms);
  w.Key("max_ms"); w.Double(s.latency.max_ms);
  w.Key("mean_ms"); w.Double(s.latency.mean_ms);
  w.Key("cache"); w.StartObject();
  w.Key("hit"); w.Uint64(s.cache_hit);
  w.Key("miss"); w.Uint64(s.cache_miss);
  w.Key("bypass"); w.Uint64(s.cache_bypass);
  w.EndObject();
  w.Key("statuses"); w.StartObject();
  for (const auto& [status, n] : s.statuses) {
    w.Key(std::to_string(status).c_str());
    w.Uint64(n);
  }
  w.EndObject();
  w.EndObject();
}

} // namespace

run_stats summarize_run(const std::string& label, const std::vector<request_outcome>& outcomes,
                        const std::vector<std::string>& endpoint_names, double offered_rate,
                        double elapsed_s) {
  run_stats run;
  run.label = label;
  run.offered_rate = offered_rate;
  run.elapsed_s = elapsed_s;
  run.endpoints.resize(endpoint_names.size());
  std::vector<std::vector<int64_t>> latencies(endpoint_names.size());
  std::vector<int64_t> all_latencies;
  all_latencies.reserve(outcomes.size());
  for (size_t i = 0; i < endpoint_names.size(); ++i)
    run.endpoints[i].name = endpoint_names[i];
  run.all.name = "all";
  for (const auto& o : outcomes) {
    if (o.endpoint >= 0 && static_cast<size_t>(o.endpoint) < run.endpoints.size()) {
      add(run.endpoints[static_cast<size_t>(o.endpoint)], o);
      latencies[static_cast<size_t>(o.endpoint)].push_back(o.latency_ns);
    }
    add(run.all, o);
    all_latencies.push_back(o.latency_ns);
  }
  for (size_t i = 0; i < run.endpoints.size(); ++i)
    finish(run.endpoints[i], latencies[i], elapsed_s);
  finish(run.all, all_latencies, elapsed_s);
  return run;
}

std::string format_run_table(const run_stats& run) {
  char head[200];
  std::snprintf(head, sizeof head, "%s @ %.0f req/s offered (%.1f s)\n", run.label.c_str(),
                run.offered_rate, run.elapsed_s);
  std::string out = head;
  out += "  endpoint       requests  ok/s       p50 ms   p95 ms   p99 ms    max ms  non2xx timeout hit/miss/bypass\n";
  for (const auto& e : run.endpoints)
    out += table_line(e, false);
  out += table_line(run.all, false);
  return out;
}

std::string format_run_markdown(const run_stats& run) {
  char head[200];
  std::snprintf(head, sizeof head, "**%s @ %.0f req/s offered**\n\n", run.label.c_str(),
                run.offered_rate);
  std::string out = head;
  out += "| endpoint | requests | ok/s | p50 ms | p95 ms | p99 ms | max ms | non-2xx | timeouts | hit/miss/bypass |\n";
  out += "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n";
  for (const auto& e : run.endpoints)
    out += table_line(e, true);
  out += table_line(run.all, true);
  return out + "\n";
}

std::string run_stats_json(const run_stats& run) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("label"); w.String(run.label);
  w.Key("offered_rate"); w.Double(run.offered_rate);
  w.Key("elapsed_s"); w.Double(run.elapsed_s);
  w.Key("all"); write_endpoint(w, run.all);
  w.Key("endpoints"); w.StartObject();
  for (const auto& e : run.endpoints) {
    w.Key(e.name.c_str());
    write_endpoint(w, e);
  }
  w.EndObject();
  w.EndObject();
  return buf.GetString();
}

} // namespace joule::bench
