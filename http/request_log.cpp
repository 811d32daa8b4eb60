#include "http/request_log.hpp"

#include <cctype>
#include <cstdio>
#include <random>

#include "core/log.hpp"

namespace joule::http {

bool sane_request_id(const std::string& id) {
  if (id.empty() || id.size() > 128)
    return false;
  for (char c : id)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == ':' ||
          c == '-'))
      return false;
  return true;
}

std::string request_id_for(const request& req) {
  auto given = req.header("X-Request-Id");
  if (sane_request_id(given))
    return given;
  // Not a secret, only unique enough to find a request's lines: a per-thread generator.
  thread_local std::mt19937_64 rng{std::random_device{}()};
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(rng()));
  return buf;
}

void finish_response(const access_entry& e, response& r) {
  r.headers.emplace_back("X-Request-Id", e.request_id);
  if (!access_log_enabled())
    return;
  auto ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() -
                                                      e.received)
                .count();
  char dur[32];
  std::snprintf(dur, sizeof dur, "%.3f", ms);
  // The target as sent (queries hold ids and times, never credentials: tokens travel only in
  // the Authorization header), cut to keep one line bounded.
  auto target = e.target.size() > 1024 ? e.target.substr(0, 1024) + "..." : e.target;
  auto status = std::to_string(r.status);
  request_scope scope{e.request_id};
  log(log_level::info, "access", e.method + " " + target + " " + status,
      {{"method", e.method},
       {"target", target},
       {"status", status, true},
       {"duration_ms", dur, true},
       {"bytes", std::to_string(r.body.size()), true},
       {"route", r.route.empty() ? "-" : r.route},
       {"token_id", r.token_id.empty() ? "-" : r.token_id},
       {"remote", e.remote},
       {"peer", e.peer.empty() ? e.remote : e.peer}});
}

} // namespace joule::http
