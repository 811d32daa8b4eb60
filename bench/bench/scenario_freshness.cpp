// Scenario "freshness": how long a reading written straight into PostgreSQL takes to show
// in the dashboard's power query, and how old the server says its answers are.
#include <pqxx/pqxx>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cmath>
#include <cstdio>

#include "bench/dashboard_mix.hpp"
#include "bench/response_fields.hpp"
#include "bench/scenarios.hpp"
#include "common/http_client.hpp"
#include "common/percentiles.hpp"
#include "common/stop_signal.hpp"

namespace joule::bench {

namespace {

void register_probe(pqxx::connection& conn) {
  pqxx::work tx(conn);
  tx.exec_params("INSERT INTO devices (id, household_id, name) VALUES ($1::uuid, $2::uuid, $3) "
                 "ON CONFLICT (id) DO NOTHING",
                 probe_device_id().to_string(), probe_household_id().to_string(),
                 "joule-bench freshness probe");
  tx.commit();
}

void write_marker(pqxx::connection& conn, unix_seconds ts, double marker) {
  pqxx::work tx(conn);
  tx.exec_params("INSERT INTO telemetry (ts, device_id, household_id, power_w, energy_wh) "
                 "VALUES ($1::timestamptz, $2::uuid, $3::uuid, $4, 0)",
                 format_rfc3339(ts), probe_device_id().to_string(),
                 probe_household_id().to_string(), marker);
  tx.commit();
}

void update_marker(pqxx::connection& conn, unix_seconds ts, double marker, double to) {
  pqxx::work tx(conn);
  tx.exec_params("UPDATE telemetry SET power_w = $4 WHERE device_id = $2::uuid AND ts = "
                 "$1::timestamptz AND power_w = $3",
                 format_rfc3339(ts), probe_device_id().to_string(), marker, to);
  tx.commit();
}

void delete_marker(pqxx::connection& conn, unix_seconds ts, double marker) {
  pqxx::work tx(conn);
  tx.exec_params("DELETE FROM telemetry WHERE device_id = $2::uuid AND ts = $1::timestamptz AND "
                 "power_w = $3",
                 format_rfc3339(ts), probe_device_id().to_string(), marker);
  tx.commit();
}

std::vector<int64_t> to_ns(const std::vector<double>& seconds) {
  std::vector<int64_t> out;
  for (double s : seconds)
    out.push_back(static_cast<int64_t>(s * 1e9));
  return out;
}

} // namespace

scenario_report run_freshness_scenario(const cli_args& a) {
  if (!a.has("url") || !a.has("db"))
    throw std::invalid_argument("freshness needs --url and --db");
  const auto samples = a.get_int("samples", 20);
  const double poll_s = static_cast<double>(a.get_duration("poll", std::chrono::milliseconds(100)).count()) / 1000;
  const double give_up_s = static_cast<double>(a.get_duration("timeout", std::chrono::seconds(30)).count()) / 1000;
  const auto gap = a.get_duration("gap", std::chrono::milliseconds(500));
  // --late D: the marker is D old (below the rollup watermarks: issue 9 §3), and it is then
  // updated and deleted; each change is timed until the dashboard's default power window (the
  // last hour, 1 m) shows it.
  const double late_s =
      static_cast<double>(a.get_duration("late", std::chrono::milliseconds(0)).count()) / 1000;
  const bool late = late_s > 0;
  pqxx::connection conn(a.get("db", ""));
  register_probe(conn);
  http_client client(http_url::parse(a.get("url", "")), std::chrono::seconds(5));
  const std::string device = probe_device_id().to_string();

  std::vector<double> visible_after_s, ages_s;
  uint64_t not_visible = 0, http_errors = 0;
  std::string last_error;
  std::printf("freshness: %lld samples, polling every %.0f ms, giving up after %.0f s each\n",
              static_cast<long long>(samples), poll_s * 1000, give_up_s);
  // Polls until `shows(max)` holds for the marker's bucket (max: nan when the bucket is
  // absent); records the time since `committed`.
  auto wait_visible = [&](unix_seconds ts, double committed, auto shows) {
    while (now_seconds() - committed < give_up_s && !stop_requested()) {
      auto r = client.get(late ? "/analytics/devices/" + device + "/power"
                               : dashboard_target(dashboard_endpoint::power_1m_1h, device, ts + 1));
      const double answered = now_seconds();
      if (r.status != 200) {
        ++http_errors;
        last_error = r.status ? "HTTP " + std::to_string(r.status) + ": " + r.body.substr(0, 200) : r.error;
      } else {
        double fresh = 0, max = NAN;
        if (read_fresh_as_of(r.body, fresh))
          ages_s.push_back(answered - fresh);
        if (!read_power_bucket_max(r.body, floor_to(ts, 60), max))
          max = NAN;
        if (shows(max)) {
          visible_after_s.push_back(answered - committed);
          return true;
        }
      }
      sleep_unless_stopped(std::chrono::milliseconds(static_cast<int64_t>(poll_s * 1000)));
    }
    ++not_visible;
    return false;
  };
  for (int64_t k = 0; k < samples && !stop_requested(); ++k) {
    const auto ts = static_cast<unix_seconds>(now_seconds() - late_s);
    // Unique and above every earlier marker of the same minute, even across runs.
    const double marker = 1e6 + static_cast<double>(ts % 1'000'000) + static_cast<double>(k) / 100;
    write_marker(conn, ts, marker);
    bool seen = wait_visible(ts, now_seconds(), [&](double max) { return max >= marker - 1e-6; });
    std::string line = seen ? std::to_string(visible_after_s.back()) + " s" : "not visible";
    if (late) {
      update_marker(conn, ts, marker, marker + 0.005);
      seen = wait_visible(ts, now_seconds(), [&](double max) { return max >= marker + 0.004; });
      line += std::string(", update ") +
              (seen ? std::to_string(visible_after_s.back()) + " s" : "not visible");
      delete_marker(conn, ts, marker + 0.005);
      seen = wait_visible(ts, now_seconds(),
                          [&](double max) { return std::isnan(max) || max < marker - 1e-6; });
      line += std::string(", delete ") +
              (seen ? std::to_string(visible_after_s.back()) + " s" : "not visible");
    }
    std::printf("  sample %lld: %s\n", static_cast<long long>(k + 1), line.c_str());
    sleep_unless_stopped(gap);
  }

  auto visible_ns = to_ns(visible_after_s);
  auto age_ns = to_ns(ages_s);
  const auto vis = summarize_latencies(visible_ns);
  const auto age = summarize_latencies(age_ns);
  std::printf("  time to visible: p50 %.3f s, p95 %.3f s, max %.3f s (%llu not visible)\n"
              "  now - fresh_as_of: p50 %.3f s, p95 %.3f s, max %.3f s (%llu responses)\n",
              vis.p50_ms / 1000, vis.p95_ms / 1000, vis.max_ms / 1000,
              static_cast<unsigned long long>(not_visible), age.p50_ms / 1000, age.p95_ms / 1000,
              age.max_ms / 1000, static_cast<unsigned long long>(age.count));
  if (http_errors)
    std::printf("  %llu HTTP errors, last: %s\n", static_cast<unsigned long long>(http_errors),
                last_error.c_str());

  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("scenario"); w.String(late ? "freshness-late" : "freshness");
  w.Key("late_s"); w.Double(late_s);
  w.Key("samples"); w.Int64(samples);
  w.Key("visible"); w.Uint64(vis.count);
  w.Key("not_visible"); w.Uint64(not_visible);
  w.Key("http_errors"); w.Uint64(http_errors);
  w.Key("last_error"); w.String(last_error);
  w.Key("time_to_visible_s"); w.StartObject();
  w.Key("p50"); w.Double(vis.p50_ms / 1000);
  w.Key("p95"); w.Double(vis.p95_ms / 1000);
  w.Key("max"); w.Double(vis.max_ms / 1000);
  w.EndObject();
  w.Key("fresh_as_of_age_s"); w.StartObject();
  w.Key("responses"); w.Uint64(age.count);
  w.Key("p50"); w.Double(age.p50_ms / 1000);
  w.Key("p95"); w.Double(age.p95_ms / 1000);
  w.Key("max"); w.Double(age.max_ms / 1000);
  w.EndObject();
  w.EndObject();

  char md[1200];
  std::snprintf(md, sizeof md,
                "## Freshness%s\n\nA marker reading INSERTed into `telemetry` (probe device, "
                "own household)%s, then `GET …/power?step=1m` polled every %.0f ms until the "
                "change shows.\n\n"
                "| metric | p50 | p95 | max | n |\n|---|---:|---:|---:|---:|\n"
                "| time to visible (s) | %.3f | %.3f | %.3f | %llu (%llu not visible in %.0f s) |\n"
                "| now − fresh_as_of (s) | %.3f | %.3f | %.3f | %llu responses |\n\n%s",
                late ? " of late data" : "",
                late ? (" " + std::to_string(static_cast<long long>(late_s)) +
                        " s in the past, then UPDATEd, then DELETEd (one time per change)")
                           .c_str()
                     : "",
                poll_s * 1000, vis.p50_ms / 1000, vis.p95_ms / 1000, vis.max_ms / 1000,
                static_cast<unsigned long long>(vis.count),
                static_cast<unsigned long long>(not_visible), give_up_s, age.p50_ms / 1000,
                age.p95_ms / 1000, age.max_ms / 1000, static_cast<unsigned long long>(age.count),
                http_errors ? ("HTTP errors: " + std::to_string(http_errors) + "\n\n").c_str() : "");
  return {buf.GetString(), md};
}

} // namespace joule::bench
