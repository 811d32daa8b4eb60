#include "actors/status_cli.hpp"

#include <cmath>
#include <cstdint>
#include <ctime>
#include <cstdio>
#include <iostream>
#include <sstream>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <rapidjson/document.h>
#include <rapidjson/writer.h>

namespace joule {
namespace {

namespace http = boost::beast::http;
using tcp = boost::asio::ip::tcp;

struct answer {
  int status = 0;
  std::string body;
};

answer get(const std::string& host, const std::string& port, const std::string& target,
           const std::string& token) {
  boost::asio::io_context io;
  boost::beast::tcp_stream stream{io};
  stream.expires_after(std::chrono::seconds(5));
  stream.connect(tcp::resolver{io}.resolve(host, port));
  http::request<http::string_body> req{http::verb::get, target, 11};
  req.set(http::field::host, host);
  req.set(http::field::user_agent, "joule-status");
  if (!token.empty())
    req.set(http::field::authorization, "Bearer " + token);
  http::write(stream, req);
  boost::beast::flat_buffer buf;
  http::response<http::string_body> res;
  http::read(stream, buf, res);
  boost::system::error_code ec;
  stream.socket().shutdown(tcp::socket::shutdown_both, ec);
  return {static_cast<int>(res.result_int()), res.body()};
}

void flatten(const rapidjson::Value& v, const std::string& prefix, std::string& out) {
  if (v.IsObject()) {
    for (auto& m : v.GetObject())
      flatten(m.value, prefix.empty() ? m.name.GetString() : prefix + "." + m.name.GetString(),
              out);
    return;
  }
  out += " " + prefix + "=";
  if (v.IsString()) {
    out += v.GetString();
  } else {
    rapidjson::StringBuffer sb;
    rapidjson::Writer<rapidjson::StringBuffer> w{sb};
    v.Accept(w);
    out += sb.GetString();
  }
}

// The value of an unlabelled sample `name` in a text exposition, or NaN.
double sample(const std::string& metrics, const std::string& name) {
  std::istringstream in(metrics);
  for (std::string line; std::getline(in, line);)
    if (line.compare(0, name.size() + 1, name + " ") == 0)
      return std::strtod(line.c_str() + name.size() + 1, nullptr);
  return std::nan("");
}

std::string label_of(const std::string& metrics, const std::string& name, const std::string& key) {
  auto at = metrics.find("\n" + name + "{");
  if (at == std::string::npos)
    return "?";
  auto k = metrics.find(key + "=\"", at);
  if (k == std::string::npos)
    return "?";
  k += key.size() + 2;
  return metrics.substr(k, metrics.find('"', k) - k);
}

} // namespace

std::string summarize_status(const std::string& json) {
  rapidjson::Document d;
  d.Parse(json.c_str(), json.size());
  if (d.HasParseError() || !d.IsObject())
    return "(unreadable status: " + json.substr(0, 200) + ")\n";
  std::string out;
  for (auto& m : d.GetObject()) {
    std::string line;
    if (std::string(m.name.GetString()) == "supervisor" && m.value.IsObject()) {
      // One line for the actor tree: how many run, which do not, restarts in total.
      int running = 0;
      std::int64_t restarts = 0;
      std::string down;
      for (auto& c : m.value.GetObject()) {
        if (!c.value.IsObject())
          continue;
        auto r = c.value.FindMember("running");
        if (r != c.value.MemberEnd() && r->value.IsBool() && r->value.GetBool())
          ++running;
        else
          down += std::string(down.empty() ? "" : ",") + c.name.GetString();
        auto n = c.value.FindMember("restarts");
        if (n != c.value.MemberEnd() && n->value.IsInt64())
          restarts += n->value.GetInt64();
      }
      out += "actors: running=" + std::to_string(running) +
             " not_running=" + (down.empty() ? "none" : down) +
             " restarts=" + std::to_string(restarts) + "\n";
      continue;
    }
    if (m.value.IsObject()) {
      for (auto& f : m.value.GetObject())
        flatten(f.value, f.name.GetString(), line);
    } else {
      flatten(m.value, "value", line);
    }
    out += std::string(m.name.GetString()) + ":" + line + "\n";
  }
  return out;
}

int run_status(const status_options& o) {
  const std::string scheme = "http://";
  if (o.url.compare(0, scheme.size(), scheme) != 0) {
    std::cerr << "status: --url must be http://host:port (got '" << o.url << "')\n";
    return 2;
  }
  auto hostport = o.url.substr(scheme.size());
  if (auto slash = hostport.find('/'); slash != std::string::npos)
    hostport.resize(slash);
  auto colon = hostport.rfind(':');
  std::string host = hostport.substr(0, colon), port = "80";
  if (colon != std::string::npos)
    port = hostport.substr(colon + 1);
  if (host.size() > 1 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  answer st, met;
  try {
    st = get(host, port, "/admin/status", o.token);
    if (st.status == 200)
      met = get(host, port, "/metrics", o.token);
  } catch (const std::exception& e) {
    std::cerr << "status: cannot reach " << o.url << ": " << e.what() << "\n";
    return 1;
  }
  if (st.status == 401 || st.status == 403) {
    std::cerr << "status: " << o.url << " answered " << st.status
              << ": an admin token is needed (--token or JOULE_TOKEN)\n";
    return 1;
  }
  if (st.status != 200) {
    std::cerr << "status: " << o.url << "/admin/status answered " << st.status << ": "
              << st.body.substr(0, 300) << "\n";
    return 1;
  }
  std::string head = "joule " + label_of(met.body, "joule_build_info", "version") + " (" +
                     label_of(met.body, "joule_build_info", "revision") + ") at " + o.url;
  auto started = sample(met.body, "process_start_time_seconds");
  if (!std::isnan(started)) {
    auto up = static_cast<long long>(std::time(nullptr) - started);
    char buf[64];
    std::snprintf(buf, sizeof buf, ", up %lldd %02lldh %02lldm", up / 86400, up / 3600 % 24,
                  up / 60 % 60);
    head += buf;
  }
  auto rss = sample(met.body, "process_resident_memory_bytes");
  if (!std::isnan(rss)) {
    char buf[64];
    std::snprintf(buf, sizeof buf, ", RSS %.0f MiB", rss / (1 << 20));
    head += buf;
  }
  std::cout << head << "\n" << summarize_status(st.body);
  return 0;
}

} // namespace joule
