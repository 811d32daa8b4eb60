// joule-sim: a deterministic household/device fleet that writes telemetry.
//   joule-sim list     --households N --seed S
//   joule-sim backfill --db URI --hours N [--end RFC3339 | --start RFC3339] [--json]
//   joule-sim live     [--db URI | --target http://127.0.0.1:PORT] [--duration 60s]
// Common: --households N --devices-min 3 --devices-max 12 --interval 10s --seed S
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cstdio>
#include <exception>
#include <iostream>
#include <unistd.h>

#include "common/cli_args.hpp"
#include "common/http_client.hpp"
#include "common/stop_signal.hpp"
#include "common/time_format.hpp"
#include "sim/backfill.hpp"
#include "sim/device_registry.hpp"
#include "sim/fleet.hpp"
#include "sim/live.hpp"
#include "sim/partitions.hpp"

using namespace joule::bench;

namespace {

const char* usage =
    "usage: joule-sim list|backfill|live [options]\n"
    "  fleet:    --households N (1000) --devices-min N (3) --devices-max N (12) --seed S (1)\n"
    "            --interval D (10s)\n"
    "  list:     prints the households and devices as JSON\n"
    "  backfill: --db CONNINFO --hours N (24) [--end RFC3339 (now, floored to the interval)]\n"
    "            [--start RFC3339 (instead of --hours)] [--workers N (2)] [--txn-rows N (200000)]\n"
    "            [--partitions true|false (true: daily partitions for the range)] [--json]\n"
    "  live:     --db CONNINFO | --target http://127.0.0.1:PORT  [--duration D (until SIGINT)]\n"
    "            [--batch N (1000)] [--token T (API token with the ingest scope; default\n"
    "            env JOULE_TOKEN)] [--json]\n";

fleet_params read_fleet_params(const cli_args& a) {
  fleet_params p;
  p.households = a.get_int("households", 1000);
  p.devices_min = a.get_int("devices-min", 3);
  p.devices_max = a.get_int("devices-max", 12);
  p.seed = static_cast<uint64_t>(a.get_int("seed", 1));
  return p;
}

int64_t read_interval(const cli_args& a) {
  auto ms = a.get_duration("interval", std::chrono::seconds(10)).count();
  if (ms < 1000 || ms % 1000 != 0)
    throw std::invalid_argument("--interval must be a whole number of seconds >= 1s");
  return ms / 1000;
}

unix_seconds read_time(const cli_args& a, const std::string& key, unix_seconds fallback) {
  if (!a.has(key))
    return fallback;
  double t = 0;
  if (!parse_rfc3339(a.get(key, ""), t))
    throw std::invalid_argument("--" + key + " is not RFC 3339: " + a.get(key, ""));
  return static_cast<unix_seconds>(t);
}

std::string require_db(const cli_args& a) {
  if (!a.has("db"))
    throw std::invalid_argument("--db is required");
  return a.get("db", "");
}

int cmd_list(const cli_args& a) {
  auto f = make_fleet(read_fleet_params(a));
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("seed");
  w.Uint64(static_cast<uint64_t>(a.get_int("seed", 1)));
  w.Key("devices");
  w.Uint64(f.devices.size());
  w.Key("households");
  w.StartArray();
  for (const auto& h : f.households) {
    w.StartObject();
    w.Key("id");
    w.String(h.id.to_string());
    w.Key("devices");
    w.StartArray();
    for (uint32_t i = 0; i < h.device_count; ++i) {
      const auto& d = f.devices[h.first_device + i];
      w.StartObject();
      w.Key("id");
      w.String(d.id.to_string());
      w.Key("name");
      w.String(d.name);
      w.Key("kind");
      w.String(appliance_name(d.kind));
      w.EndObject();
    }
    w.EndArray();
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  std::cout << buf.GetString() << '\n';
  return 0;
}

int cmd_backfill(const cli_args& a) {
  const auto f = make_fleet(read_fleet_params(a));
  backfill_options o;
  o.conninfo = require_db(a);
  o.interval_s = read_interval(a);
  o.end = floor_to(read_time(a, "end", static_cast<unix_seconds>(now_seconds())), o.interval_s);
  o.start = ceil_to(read_time(a, "start", o.end - a.get_int("hours", 24) * 3600), o.interval_s);
  o.start = std::min(o.start, o.end); // a top-up with nothing left to write is an empty range
  o.workers = static_cast<int>(a.get_int("workers", 2));
  o.rows_per_transaction = static_cast<uint64_t>(a.get_int("txn-rows", 200'000));
  // Redrawn on a terminal, plain lines otherwise; --progress=false for none.
  o.progress = a.get_bool("progress", true);

  const uint64_t new_devices = register_devices(o.conninfo, f);
  if (a.get_bool("partitions", true)) {
    auto notes = ensure_daily_partitions(o.conninfo, o.start, o.end);
    if (!notes.empty())
      std::cerr << "joule-sim: " << notes << '\n';
  }
  const auto r = run_backfill(f, o);
  const double rate = r.seconds > 0 ? static_cast<double>(r.rows) / r.seconds : 0;
  if (a.get_bool("json", false)) {
    std::printf("{\"rows\":%llu,\"devices\":%zu,\"devices_new\":%llu,\"households\":%zu,"
                "\"seconds\":%.3f,\"rows_per_second\":%.0f,\"start\":\"%s\",\"end\":\"%s\","
                "\"interrupted\":%s}\n",
                static_cast<unsigned long long>(r.rows), f.devices.size(),
                static_cast<unsigned long long>(new_devices), f.households.size(), r.seconds, rate,
                format_rfc3339(o.start).c_str(), format_rfc3339(o.end).c_str(),
                stop_requested() ? "true" : "false");
  } else {
    std::printf("backfill: rows=%llu devices=%zu households=%zu seconds=%.1f rows_per_second=%.0f "
                "start=%s end=%s%s\n",
                static_cast<unsigned long long>(r.rows), f.devices.size(), f.households.size(),
                r.seconds, rate, format_rfc3339(o.start).c_str(), format_rfc3339(o.end).c_str(),
                stop_requested() ? " (interrupted)" : "");
  }
  return stop_requested() ? 130 : 0;
}

int cmd_live(const cli_args& a) {
  const auto f = make_fleet(read_fleet_params(a));
  live_options o;
  o.target_url = a.get("target", "");
  if (o.target_url.empty())
    o.conninfo = require_db(a);
  o.interval_s = read_interval(a);
  o.duration = a.get_duration("duration", std::chrono::milliseconds(0));
  o.batch = static_cast<size_t>(std::max<int64_t>(1, a.get_int("batch", 1000)));
  // Redrawn on a terminal, plain lines otherwise; --progress=false for none.
  o.progress = a.get_bool("progress", true);
  if (o.target_url.empty())
    register_devices(o.conninfo, f);
  const auto r = run_live(f, o);
  if (a.get_bool("json", false)) {
    std::printf("{\"ticks\":%llu,\"readings_sent\":%llu,\"readings_accepted\":%llu,"
                "\"failed_batches\":%llu,\"late_ticks\":%llu,\"devices\":%zu,\"seconds\":%.3f}\n",
                static_cast<unsigned long long>(r.ticks),
                static_cast<unsigned long long>(r.readings_sent),
                static_cast<unsigned long long>(r.readings_accepted),
                static_cast<unsigned long long>(r.failed_batches),
                static_cast<unsigned long long>(r.late_ticks), f.devices.size(), r.seconds);
  } else {
    std::printf("live: ticks=%llu readings_sent=%llu readings_accepted=%llu failed_batches=%llu "
                "late_ticks=%llu seconds=%.1f\n",
                static_cast<unsigned long long>(r.ticks),
                static_cast<unsigned long long>(r.readings_sent),
                static_cast<unsigned long long>(r.readings_accepted),
                static_cast<unsigned long long>(r.failed_batches),
                static_cast<unsigned long long>(r.late_ticks), r.seconds);
  }
  if (!r.last_error.empty())
    std::cerr << "joule-sim: last error: " << r.last_error << '\n';
  return r.failed_batches ? 1 : 0;
}

} // namespace

int main(int argc, char** argv) {
  try {
    cli_args a(argc, argv);
    const std::vector<std::string> fleet_keys = {"households", "devices-min", "devices-max",
                                                 "seed", "interval", "json"};
    auto known = [&](std::vector<std::string> extra) {
      extra.insert(extra.end(), fleet_keys.begin(), fleet_keys.end());
      a.require_known(extra);
    };
    install_stop_signal_handlers();
    if (a.subcommand() == "list") {
      known({});
      return cmd_list(a);
    }
    if (a.subcommand() == "backfill") {
      known({"db", "hours", "end", "start", "workers", "txn-rows", "partitions"});
      return cmd_backfill(a);
    }
    if (a.subcommand() == "live") {
      known({"db", "target", "duration", "batch", "token"});
      if (a.has("token"))
        set_bearer_token(a.get("token", ""));
      return cmd_live(a);
    }
    std::cerr << usage;
    return a.subcommand().empty() || a.subcommand() == "help" ? 0 : 2;
  } catch (const std::invalid_argument& e) {
    std::cerr << "joule-sim: " << e.what() << '\n' << usage;
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "joule-sim: " << e.what() << '\n';
    return 1;
  }
}
