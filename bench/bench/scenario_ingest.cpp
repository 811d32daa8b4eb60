// Scenario "ingest": the highest sustained readings/s through POST /telemetry (closed loop
// on a few connections, batches of 1,000) while the dashboard mix runs open loop at a
// modest rate alongside.
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <atomic>
#include <cstdio>
#include <map>
#include <mutex>
#include <thread>

#include "bench/dashboard_mix.hpp"
#include "bench/load_results.hpp"
#include "bench/open_loop_client.hpp"
#include "bench/scenarios.hpp"
#include "common/hash.hpp"
#include "common/http_client.hpp"
#include "common/open_loop_schedule.hpp"
#include "common/percentiles.hpp"
#include "common/stop_signal.hpp"
#include "sim/telemetry_json.hpp"
#include "sim/telemetry_post.hpp"

namespace joule::bench {

namespace {

struct poster_totals {
  std::mutex mutex;
  uint64_t batches_ok = 0, batches_failed = 0, readings_accepted = 0, retries = 0;
  std::map<int, uint64_t> statuses;
  std::vector<int64_t> latencies_ns;
  std::string last_error;
};

struct parsed_ids {
  std::vector<uuid> devices, households;
};

void post_until(const http_url& url, const parsed_ids& ids, size_t batch, double deadline,
                uint64_t poster, poster_totals& totals) {
  http_client client(url, std::chrono::seconds(10));
  std::vector<reading> readings(batch);
  std::string body;
  for (uint64_t n = 0; now_seconds() < deadline && !stop_requested(); ++n) {
    const auto ts = static_cast<unix_seconds>(now_seconds());
    for (size_t i = 0; i < batch; ++i) {
      const size_t d = (poster * 7919 + n * batch + i) % ids.devices.size();
      const double p = 50 + 2000 * unit_interval(hash_of(poster, n, i));
      readings[i] = {ts, &ids.devices[d], &ids.households[d], p, p * 10 / 3600};
    }
    body.clear();
    append_telemetry_body(body, readings.data(), batch);
    const auto started = std::chrono::steady_clock::now();
    const auto r = post_telemetry(client, body, 3, std::chrono::seconds(2));
    const auto elapsed = std::chrono::steady_clock::now() - started;
    {
      std::lock_guard<std::mutex> lock(totals.mutex);
      totals.latencies_ns.push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(elapsed).count());
      ++totals.statuses[r.status];
      totals.retries += static_cast<uint64_t>(r.retries);
      if (r.error.empty()) {
        ++totals.batches_ok;
        totals.readings_accepted += static_cast<uint64_t>(r.accepted);
      } else {
        ++totals.batches_failed;
        totals.last_error = r.error;
      }
    }
    // A server that rejects everything (e.g. no such route yet) must not be hammered in a
    // tight loop for the whole run.
    if (!r.error.empty())
      sleep_unless_stopped(std::chrono::milliseconds(50));
  }
}

// Error text goes into a markdown table cell: keep it on one line and without '|'.
std::string table_cell(std::string text) {
  for (char& c : text)
    if (c == '|' || c == '\n' || c == '\r')
      c = ' ';
  return text.substr(0, 120);
}

} // namespace

scenario_report run_ingest_scenario(const cli_args& a) {
  if (!a.has("url"))
    throw std::invalid_argument("ingest needs --url");
  const auto url = http_url::parse(a.get("url", ""));
  const auto ids = fleet_ids_from_args(a);
  parsed_ids parsed;
  for (size_t i = 0; i < ids.device_ids.size(); ++i) {
    uuid d, h;
    if (uuid::parse(ids.device_ids[i], d) && uuid::parse(ids.device_households[i], h)) {
      parsed.devices.push_back(d);
      parsed.households.push_back(h);
    }
  }
  const auto duration = a.get_duration("duration", std::chrono::seconds(10));
  const auto batch = static_cast<size_t>(std::max<int64_t>(1, a.get_int("batch", 1000)));
  const auto posters = std::max<int64_t>(1, a.get_int("ingest-connections", 2));
  const double read_rate = a.get_double("read-rate", 200);

  const double started = now_seconds();
  const double deadline = started + static_cast<double>(duration.count()) / 1000;
  poster_totals totals;
  std::vector<std::thread> threads;
  for (int64_t p = 0; p < posters; ++p)
    threads.emplace_back(post_until, std::cref(url), std::cref(parsed), batch, deadline,
                         static_cast<uint64_t>(p), std::ref(totals));

  run_stats reads;
  if (read_rate > 0) {
    auto o = load_options(a, url, read_rate, duration, 16);
    open_loop_schedule schedule(read_rate, duration);
    auto run = run_open_loop(o, make_dashboard_mix(ids, schedule.count(),
                                                   static_cast<uint64_t>(a.get_int("seed", 1)),
                                                   static_cast<unix_seconds>(started)));
    reads = summarize_run("reads during ingest", run.outcomes, dashboard_endpoint_names(),
                          read_rate, run.elapsed_s);
  }
  for (auto& t : threads)
    t.join();
  const double elapsed = now_seconds() - started;
  const auto post_latency = summarize_latencies(totals.latencies_ns);
  const double readings_per_s = static_cast<double>(totals.readings_accepted) / elapsed;

  std::printf("ingest: %.0f readings/s accepted (%llu readings, %llu batches ok, %llu failed, "
              "%llu 503/429 retries) in %.1f s\n  POST latency p50 %.2f ms, p95 %.2f ms, max %.2f ms\n",
              readings_per_s, static_cast<unsigned long long>(totals.readings_accepted),
              static_cast<unsigned long long>(totals.batches_ok),
              static_cast<unsigned long long>(totals.batches_failed),
              static_cast<unsigned long long>(totals.retries), elapsed, post_latency.p50_ms,
              post_latency.p95_ms, post_latency.max_ms);
  if (!totals.last_error.empty())
    std::printf("  last error: %s\n", totals.last_error.c_str());
  if (read_rate > 0)
    std::printf("%s", format_run_table(reads).c_str());

  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("scenario"); w.String("ingest");
  w.Key("seconds"); w.Double(elapsed);
  w.Key("batch"); w.Uint64(batch);
  w.Key("connections"); w.Int64(posters);
  w.Key("readings_accepted"); w.Uint64(totals.readings_accepted);
  w.Key("readings_per_second"); w.Double(readings_per_s);
  w.Key("batches_ok"); w.Uint64(totals.batches_ok);
  w.Key("batches_failed"); w.Uint64(totals.batches_failed);
  w.Key("retries_503"); w.Uint64(totals.retries);
  w.Key("last_error"); w.String(totals.last_error);
  w.Key("statuses"); w.StartObject();
  for (const auto& [status, n] : totals.statuses) {
    w.Key(std::to_string(status).c_str());
    w.Uint64(n);
  }
  w.EndObject();
  w.Key("post_p50_ms"); w.Double(post_latency.p50_ms);
  w.Key("post_p95_ms"); w.Double(post_latency.p95_ms);
  w.Key("post_max_ms"); w.Double(post_latency.max_ms);
  if (read_rate > 0) {
    const auto json = run_stats_json(reads);
    w.Key("reads");
    w.RawValue(json.c_str(), json.size(), rapidjson::kObjectType);
  }
  w.EndObject();

  char md[800];
  std::snprintf(md, sizeof md,
                "## Ingest (POST /telemetry)\n\n%lld connections, batches of %zu, closed loop, with "
                "the read mix at %.0f req/s alongside.\n\n"
                "| readings/s accepted | batches ok | batches failed | POST p50 ms | POST p95 ms | last error |\n"
                "|---:|---:|---:|---:|---:|---|\n| %.0f | %llu | %llu | %.2f | %.2f | %s |\n\n",
                static_cast<long long>(posters), batch, read_rate, readings_per_s,
                static_cast<unsigned long long>(totals.batches_ok),
                static_cast<unsigned long long>(totals.batches_failed), post_latency.p50_ms,
                post_latency.p95_ms, table_cell(totals.last_error).c_str());
  std::string markdown = md;
  if (read_rate > 0)
    markdown += format_run_markdown(reads);
  return {buf.GetString(), markdown};
}

} // namespace joule::bench
