// Scenario "auth-overhead" (issue 8: warm-cache throughput with auth on within 5 % of auth
// off, same run): two servers on the same database and Redis, one with auth.required=true
// (requests carry a Bearer token), one with auth.required=false (no header), driven closed
// loop to saturation with the hot dashboard mix, alternating on/off round by round so drift
// of the shared machine hits both alike. Reports answers/s per round, medians and their ratio,
// and with --on-pid/--off-pid the server CPU time per answer (the cost auth adds).
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <thread>

#include "bench/alert_rules.hpp"
#include "bench/dashboard_mix.hpp"
#include "bench/scenarios.hpp"
#include "common/http_client.hpp"
#include "common/stop_signal.hpp"

namespace joule::bench {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using clock_type = std::chrono::steady_clock;

struct loop_counts {
  std::atomic<uint64_t> ok{0}, non_2xx{0}, failed{0}, hits{0};
};

// One keep-alive connection that sends the next request as soon as the previous answer is in,
// until the deadline.
class looper : public std::enable_shared_from_this<looper> {
public:
  looper(asio::io_context& ioc, const asio::ip::tcp::endpoint& ep, const http_url& url,
         const std::string& authorization, const std::vector<load_request>& requests,
         size_t first, clock_type::time_point deadline, loop_counts& counts)
      : stream_(ioc), ep_(ep), url_(url), authorization_(authorization), requests_(requests),
        next_(first), deadline_(deadline), counts_(counts) {}

  void start() {
    stream_.expires_after(std::chrono::seconds(5));
    stream_.async_connect(ep_, [self = shared_from_this()](beast::error_code ec) {
      if (ec) {
        ++self->counts_.failed;
        return;
      }
      self->stream_.socket().set_option(asio::ip::tcp::no_delay(true), ec);
      self->send();
    });
  }

private:
  void send() {
    if (clock_type::now() >= deadline_ || stop_requested())
      return;
    const auto& r = requests_[next_ % requests_.size()];
    next_ += 7;  // spread the connections over the list
    req_ = {};
    req_.method(http::verb::get);
    req_.target(url_.base_path + r.target);
    req_.version(11);
    req_.set(http::field::host, url_.host);
    req_.keep_alive(true);
    if (!authorization_.empty())
      req_.set(http::field::authorization, authorization_);
    stream_.expires_after(std::chrono::seconds(5));
    http::async_write(stream_, req_, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec) {
        ++self->counts_.failed;
        return;
      }
      self->res_ = {};
      http::async_read(self->stream_, self->buffer_, self->res_,
                       [self](beast::error_code e, size_t) { self->on_read(e); });
    });
  }

  void on_read(beast::error_code ec) {
    if (ec) {
      ++counts_.failed;
      return;
    }
    auto status = res_.result_int();
    if (status >= 200 && status < 300)
      ++counts_.ok;
    else
      ++counts_.non_2xx;
    if (auto it = res_.find("X-Cache"); it != res_.end() && it->value() == "hit")
      ++counts_.hits;
    if (!res_.keep_alive())
      return;
    send();
  }

  beast::tcp_stream stream_;
  asio::ip::tcp::endpoint ep_;
  const http_url& url_;
  const std::string& authorization_;
  const std::vector<load_request>& requests_;
  size_t next_;
  clock_type::time_point deadline_;
  loop_counts& counts_;
  beast::flat_buffer buffer_;
  http::request<http::string_body> req_;
  http::response<http::string_body> res_;
};

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// utime + stime of a process in seconds, or -1.
double cpu_seconds(int64_t pid) {
  uint64_t ticks = 0;
  if (pid <= 0 || !parse_proc_stat_cpu_ticks(read_text("/proc/" + std::to_string(pid) + "/stat"), ticks))
    return -1;
  return static_cast<double>(ticks) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

struct run_result {
  std::string mode;  // "on" or "off"
  int round = 0;
  double seconds = 0;
  uint64_t ok = 0, non_2xx = 0, failed = 0, hits = 0;
  double answers_per_s = 0;
  double cpu_us_per_answer = -1;
};

run_result closed_loop(const std::string& mode, int round, const http_url& url,
                       const std::string& authorization, const std::vector<load_request>& requests,
                       int connections, int threads, std::chrono::milliseconds duration,
                       int64_t pid) {
  loop_counts counts;
  const asio::ip::tcp::endpoint ep(asio::ip::make_address(url.host), url.port);
  std::vector<std::unique_ptr<asio::io_context>> ctxs;
  for (int t = 0; t < threads; ++t)
    ctxs.push_back(std::make_unique<asio::io_context>(1));
  const double cpu0 = cpu_seconds(pid);
  const auto t0 = clock_type::now();
  const auto deadline = t0 + duration;
  for (int c = 0; c < connections; ++c)
    std::make_shared<looper>(*ctxs[static_cast<size_t>(c % threads)], ep, url, authorization,
                             requests, static_cast<size_t>(c) * 131, deadline, counts)
        ->start();
  std::vector<std::thread> workers;
  for (auto& ctx : ctxs)
    workers.emplace_back([&ctx] { ctx->run(); });
  for (auto& w : workers)
    w.join();
  run_result r;
  r.mode = mode;
  r.round = round;
  r.seconds = std::chrono::duration<double>(clock_type::now() - t0).count();
  r.ok = counts.ok;
  r.non_2xx = counts.non_2xx;
  r.failed = counts.failed;
  r.hits = counts.hits;
  r.answers_per_s = static_cast<double>(r.ok) / r.seconds;
  const double cpu1 = cpu_seconds(pid);
  if (cpu0 >= 0 && cpu1 >= cpu0 && r.ok + r.non_2xx > 0)
    r.cpu_us_per_answer = 1e6 * (cpu1 - cpu0) / static_cast<double>(r.ok + r.non_2xx);
  return r;
}

double median(std::vector<double> v) {
  if (v.empty())
    return -1;
  std::sort(v.begin(), v.end());
  auto n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

} // namespace

scenario_report run_auth_overhead_scenario(const cli_args& a) {
  if (!a.has("url") || !a.has("off-url"))
    throw std::invalid_argument("auth-overhead needs --url (auth on) and --off-url (auth off)");
  const auto token = bearer_token();
  if (token.empty())
    throw std::invalid_argument("auth-overhead needs --token (or JOULE_TOKEN): a read token of "
                                "the auth-on server");
  const auto on_url = http_url::parse(a.get("url", ""));
  const auto off_url = http_url::parse(a.get("off-url", ""));
  const auto ids = fleet_ids_from_args(a);
  const int rounds = static_cast<int>(a.get_int("rounds", 5));
  const auto duration = a.get_duration("duration", std::chrono::seconds(5));
  const int connections = static_cast<int>(a.get_int("connections", 32));
  const int threads = std::clamp(static_cast<int>(a.get_int("threads", 2)), 1, 2);
  const int64_t on_pid = a.get_int("on-pid", 0), off_pid = a.get_int("off-pid", 0);
  const std::string on_auth = "Bearer " + token;
  const std::string no_auth;

  // One list for both servers (same keys); windows end at the current step, so the keys stay
  // the same for the whole run unless a step boundary passes (both modes alike).
  auto requests = make_dashboard_mix(ids, 20000, static_cast<uint64_t>(a.get_int("seed", 1)),
                                     static_cast<unix_seconds>(now_seconds()));
  // Warm both caches (and both near caches) with every key of the mix.
  for (auto& [url, auth] : {std::pair{&on_url, &on_auth}, std::pair{&off_url, &no_auth}}) {
    auto w = closed_loop("warm", 0, *url, *auth, requests, connections, threads,
                         std::chrono::seconds(3), 0);
    if (w.ok == 0)
      throw std::runtime_error("no 2xx answer from " + url->host + ":" +
                               std::to_string(url->port) + " (" + std::to_string(w.non_2xx) +
                               " non-2xx, " + std::to_string(w.failed) + " failed)");
  }

  std::vector<run_result> runs;
  std::vector<double> on_rate, off_rate, on_cpu, off_cpu, ratios;
  std::cout << "round mode answers/s   2xx      non-2xx failed hit%   cpu µs/answer\n";
  for (int r = 1; r <= rounds && !stop_requested(); ++r) {
    double pair[2] = {0, 0};
    // Alternate which goes first, so a trend on the box does not favour one mode.
    for (int k = 0; k < 2; ++k) {
      bool on = (k == 0) == (r % 2 == 1);
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
      auto res = closed_loop(on ? "on" : "off", r, on ? on_url : off_url, on ? on_auth : no_auth,
                             requests, connections, threads, duration, on ? on_pid : off_pid);
      char line[200];
      std::snprintf(line, sizeof line, "%5d %-4s %9.0f %8llu %8llu %6llu %5.1f %s\n", r,
                    res.mode.c_str(), res.answers_per_s,
                    static_cast<unsigned long long>(res.ok),
                    static_cast<unsigned long long>(res.non_2xx),
                    static_cast<unsigned long long>(res.failed),
                    res.ok ? 100.0 * static_cast<double>(res.hits) / static_cast<double>(res.ok) : 0,
                    res.cpu_us_per_answer >= 0 ? std::to_string(res.cpu_us_per_answer).c_str() : "n/a");
      std::cout << line << std::flush;
      (on ? on_rate : off_rate).push_back(res.answers_per_s);
      if (res.cpu_us_per_answer >= 0)
        (on ? on_cpu : off_cpu).push_back(res.cpu_us_per_answer);
      pair[on ? 0 : 1] = res.answers_per_s;
      runs.push_back(res);
    }
    if (pair[1] > 0)
      ratios.push_back(pair[0] / pair[1]);
  }
  const double m_on = median(on_rate), m_off = median(off_rate);
  const double ratio = m_off > 0 ? m_on / m_off : -1;
  const double pair_ratio = median(ratios);
  const double c_on = median(on_cpu), c_off = median(off_cpu);
  const bool met = ratio >= 0.95;

  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("scenario"); w.String("auth-overhead");
  w.Key("rounds"); w.Int(rounds);
  w.Key("duration_s"); w.Double(static_cast<double>(duration.count()) / 1000);
  w.Key("connections"); w.Int(connections);
  w.Key("households"); w.Uint64(ids.household_ids.size());
  w.Key("median_answers_per_s_on"); w.Double(m_on);
  w.Key("median_answers_per_s_off"); w.Double(m_off);
  w.Key("ratio_on_off"); w.Double(ratio);
  w.Key("median_pairwise_ratio"); w.Double(pair_ratio);
  w.Key("median_cpu_us_per_answer_on"); c_on >= 0 ? w.Double(c_on) : w.Null();
  w.Key("median_cpu_us_per_answer_off"); c_off >= 0 ? w.Double(c_off) : w.Null();
  w.Key("within_5_percent"); w.Bool(met);
  w.Key("runs");
  w.StartArray();
  for (auto& r : runs) {
    w.StartObject();
    w.Key("round"); w.Int(r.round);
    w.Key("mode"); w.String(r.mode);
    w.Key("answers_per_s"); w.Double(r.answers_per_s);
    w.Key("ok"); w.Uint64(r.ok);
    w.Key("non_2xx"); w.Uint64(r.non_2xx);
    w.Key("failed"); w.Uint64(r.failed);
    w.Key("cache_hits"); w.Uint64(r.hits);
    w.Key("cpu_us_per_answer"); r.cpu_us_per_answer >= 0 ? w.Double(r.cpu_us_per_answer) : w.Null();
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();

  char md[1200];
  std::snprintf(md, sizeof md,
                "## Auth overhead (warm cache, closed loop to saturation)\n\n"
                "Hot dashboard mix over %zu households, %d connections, %d × %.0f s per mode, "
                "alternating; auth on = Bearer token checked on every request "
                "(auth.required=true), auth off = auth.required=false without a header.\n\n"
                "| | answers/s (median) | server CPU µs/answer (median) |\n|---|---:|---:|\n"
                "| auth on | %.0f | %s |\n| auth off | %.0f | %s |\n\n"
                "Ratio on/off: **%.3f** (median of per-round ratios %.3f); within 5 %%: **%s**.\n\n",
                ids.household_ids.size(), connections, rounds,
                static_cast<double>(duration.count()) / 1000, m_on,
                c_on >= 0 ? std::to_string(c_on).substr(0, 6).c_str() : "n/a", m_off,
                c_off >= 0 ? std::to_string(c_off).substr(0, 6).c_str() : "n/a", ratio, pair_ratio,
                met ? "yes" : "no");
  std::cout << md;
  return {buf.GetString(), md};
}

} // namespace joule::bench
