// joule-bench: open-loop HTTP benchmark scenarios for the Joule server (127.0.0.1 only).
#include <exception>
#include <fstream>
#include <iostream>

#include "bench/scenarios.hpp"
#include "common/cli_args.hpp"
#include "common/http_client.hpp"
#include "common/stop_signal.hpp"

using namespace joule::bench;

namespace {

const char* usage =
    "usage: joule-bench SCENARIO [options] [--json FILE] [--markdown FILE]\n"
    "ids: --db CONNINFO (devices table) or --households N [--seed S] (simulator model)\n"
    "auth: --token T (sent as Authorization: Bearer T; default env JOULE_TOKEN)\n"
    "  read           --url U [--nocache-url U2] [--rates 1000,2000,5000,10000,20000]\n"
    "                 [--duration 10s] [--connections 64] [--threads 1] [--timeout 2s]\n"
    "                 [--hot-households N (only the first N households)] [--cooldown 5s]\n"
    "  poll           --url U [--nocache-url U2] [--db CONNINFO (also: committed -> visible)]\n"
    "                 [--rates 1000,2000,4000,8000,15000,20000] [--duration 10s] [--samples 20]\n"
    "                 [--connections 64] [--threads 1] (each household's default energy window)\n"
    "                 [--mix energy|devices|all (devices: default power windows and top\n"
    "                 devices; all: the three endpoints in turn)]\n"
    "  raw-vs-rollup  --url U --raw-url R [--requests 30 per endpoint] [--timeout 30s]\n"
    "                 [--max-time 180s]\n"
    "  freshness      --url U --db CONNINFO [--samples 20] [--poll 100ms] [--timeout 30s]\n"
    "                 [--gap 500ms] [--late 40m (the marker is that old; then updated and\n"
    "                 deleted: late data, issue 9)]\n"
    "  ingest         --url U [--duration 10s] [--batch 1000] [--ingest-connections 2]\n"
    "                 [--read-rate 200] [--connections 16]\n"
    "  auth-overhead  --url U (auth on) --off-url U2 (auth.required=false) [--rounds 5]\n"
    "                 [--duration 5s] [--rate 100000 (over capacity: measures throughput)]\n"
    "                 [--connections 32] [--threads 2] [--hot-households 50]\n"
    "                 [--on-pid PID --off-pid PID (server CPU per request)]\n";

void write_file(const std::string& path, const std::string& text, bool append) {
  std::ofstream out(path, append ? std::ios::app : std::ios::trunc);
  out << text;
  if (!out)
    throw std::runtime_error("cannot write " + path);
}

} // namespace

int main(int argc, char** argv) {
  try {
    cli_args a(argc, argv);
    a.require_known({"url", "nocache-url", "raw-url", "db", "households", "devices-min",
                     "devices-max", "seed", "rates", "duration", "connections", "threads",
                     "timeout", "requests", "max-time", "samples", "poll", "gap", "batch",
                     "ingest-connections", "read-rate", "json", "markdown",
                     "hot-households", "rules", "server-pid", "api-connections", "idle",
                     "ready-timeout", "cooldown", "token", "off-url", "rounds", "rate", "late",
                     "on-pid", "off-pid", "mix"});
    if (a.has("token"))
      set_bearer_token(a.get("token", ""));
    install_stop_signal_handlers();
    scenario_report report;
    const auto& s = a.subcommand();
    if (s == "read")
      report = run_read_scenario(a);
    else if (s == "poll")
      report = run_poll_scenario(a);
    else if (s == "raw-vs-rollup")
      report = run_raw_vs_rollup_scenario(a);
    else if (s == "freshness")
      report = run_freshness_scenario(a);
    else if (s == "ingest")
      report = run_ingest_scenario(a);
    else if (s == "alerts")
      report = run_alerts_scenario(a);
    else if (s == "auth-overhead")
      report = run_auth_overhead_scenario(a);
    else {
      std::cerr << usage;
      return s.empty() || s == "help" ? 0 : 2;
    }
    if (a.has("json"))
      write_file(a.get("json", ""), report.json + "\n", false);
    if (a.has("markdown"))
      write_file(a.get("markdown", ""), report.markdown, true);
    return stop_requested() ? 130 : 0;
  } catch (const std::invalid_argument& e) {
    std::cerr << "joule-bench: " << e.what() << '\n' << usage;
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "joule-bench: " << e.what() << '\n';
    return 1;
  }
}
