#include "http/auth.hpp"

#include <cctype>
#include <chrono>

#include "core/metrics.hpp"
#include "core/timefmt.hpp"
#include "http/errors.hpp"

namespace joule::http {
namespace {

metrics::counter& counter_for(const char* what) {
  return metrics::global().get_counter("joule_auth_requests_total",
                                       "Authentications by outcome",
                                       metrics::label("outcome", what));
}

// Looked up once: the registry takes a lock per lookup, too much for every request.
struct outcomes {
  metrics::counter& ok = counter_for("ok");
  metrics::counter& unauthorized = counter_for("unauthorized");
  metrics::counter& rate_limited = counter_for("rate_limited");
  metrics::counter& unavailable = counter_for("unavailable");
};

outcomes& outcome() {
  static outcomes instance;
  return instance;
}

bool iequals_prefix(const std::string& s, const char* prefix) {
  std::size_t i = 0;
  for (; prefix[i]; ++i)
    if (i >= s.size() || std::tolower(static_cast<unsigned char>(s[i])) != prefix[i])
      return false;
  return true;
}

} // namespace

auth_guard::auth_guard(auth_settings s, std::shared_ptr<auth::token_cache> cache,
                       std::shared_ptr<service_registry> registry)
    : settings_(s), rate_limit_(s.rate_limit), rate_burst_(s.rate_burst),
      failure_rate_limit_(s.failure_rate_limit), failure_burst_(s.failure_burst),
      cache_(std::move(cache)), registry_(std::move(registry)), failures_(s.max_addresses) {
  outcome();  // register the outcomes now, so /metrics lists them from the start
}

void auth_guard::set_limits(double rate_limit, double rate_burst, double failure_rate_limit,
                            double failure_burst) {
  rate_limit_ = rate_limit;
  rate_burst_ = rate_burst;
  failure_rate_limit_ = failure_rate_limit;
  failure_burst_ = failure_burst;
}

response rate_limited_response(std::int64_t wait_us, const std::string& message) {
  auto r = error_response(429, "rate_limited", message);
  auto secs = std::max<std::int64_t>(1, (wait_us + 999'999) / 1'000'000);
  r.headers.emplace_back("Retry-After", std::to_string(secs));
  return r;
}

response forbidden_response(auth::scope need) {
  auto r = error_response(403, "forbidden",
                          std::string("this token lacks the '") + auth::to_string(need) +
                              "' scope");
  r.headers.emplace_back("WWW-Authenticate",
                         std::string("Bearer realm=\"joule\", error=\"insufficient_scope\", "
                                     "scope=\"") + auth::to_string(need) + "\"");
  return r;
}

response auth_guard::unauthorized(const std::string& addr, const std::string& message,
                                  bool invalid_token) {
  // Every failure counts against the client's address; the next one over the limit is 429.
  failures_.take(addr, now_micros(), failure_rate_limit_.load(std::memory_order_relaxed),
                 failure_burst_.load(std::memory_order_relaxed));
  outcome().unauthorized.inc();
  auto r = error_response(401, "unauthorized", message);
  r.headers.emplace_back("WWW-Authenticate", invalid_token
                                                 ? "Bearer realm=\"joule\", error=\"invalid_token\""
                                                 : "Bearer realm=\"joule\"");
  return r;
}

void auth_guard::admit(const std::shared_ptr<auth::token_entry>& e, const std::string& hash,
                       const std::string& addr, std::int64_t now,
                       const std::function<void(auth::identity)>& ok,
                       const std::function<void(response)>& deny) {
  // The cache is keyed by the hash; the comparison that decides is constant-time anyway.
  if (!auth::same_digest(e->hash, hash))
    return deny(unauthorized(addr, "invalid, expired or revoked token", true));
  if (e->expires_at != 0 && e->expires_at <= now) {
    cache_->remove_hash(hash);
    return deny(unauthorized(addr, "invalid, expired or revoked token", true));
  }
  auto wait = e->gate.take(now, rate_limit_.load(std::memory_order_relaxed),
                           rate_burst_.load(std::memory_order_relaxed));
  if (wait > 0) {
    outcome().rate_limited.inc();
    return deny(rate_limited_response(wait, "this token's request rate is over auth.rate_limit"));
  }
  // Coarse on purpose (flushed every 30 s): a read on most requests instead of a write that
  // would bounce the entry's cache line between threads.
  if (now - e->last_used.load(std::memory_order_relaxed) > 1'000'000)
    e->last_used.store(now, std::memory_order_relaxed);
  outcome().ok.inc();
  ok(e->who);
}

std::optional<response> auth_guard::check_head(const request& req) {
  if (!settings_.required)
    return std::nullopt;
  auto header = req.header("authorization");
  std::string token;
  if (iequals_prefix(header, "bearer ")) {
    auto b = header.find_first_not_of(' ', 7);
    auto e = header.find_last_not_of(' ');
    if (b != std::string::npos)
      token = header.substr(b, e - b + 1);
  }
  if (auth::well_formed(token))
    return std::nullopt;  // valid or not: the full check (cache, auth actor) decides
  auto wait = failures_.peek(req.remote_addr, now_micros(),
                             failure_rate_limit_.load(std::memory_order_relaxed),
                             failure_burst_.load(std::memory_order_relaxed));
  if (wait > 0) {
    outcome().rate_limited.inc();
    return rate_limited_response(wait, "too many failed authentications from this address");
  }
  return header.empty()
             ? unauthorized(req.remote_addr, "this endpoint needs an Authorization: Bearer token",
                            false)
             : unauthorized(req.remote_addr,
                            "malformed Authorization header: expected Bearer jl_…", true);
}

void auth_guard::authenticate(caf::event_based_actor* self, const request& req,
                              std::function<void(auth::identity)> ok,
                              std::function<void(response)> deny) {
  auto header = req.header("authorization");
  auto limited = [&]() -> bool {
    auto wait = failures_.peek(req.remote_addr, now_micros(),
                               failure_rate_limit_.load(std::memory_order_relaxed),
                               failure_burst_.load(std::memory_order_relaxed));
    if (wait <= 0)
      return false;
    outcome().rate_limited.inc();
    deny(rate_limited_response(wait, "too many failed authentications from this address"));
    return true;
  };
  if (header.empty()) {
    if (!settings_.required)
      return ok(auth::identity::anonymous_admin());
    if (limited())
      return;
    return deny(unauthorized(req.remote_addr, "this endpoint needs an Authorization: Bearer token", false));
  }
  std::string token;
  if (iequals_prefix(header, "bearer ")) {
    auto b = header.find_first_not_of(' ', 7);
    auto e = header.find_last_not_of(' ');
    if (b != std::string::npos)
      token = header.substr(b, e - b + 1);
  }
  if (!auth::well_formed(token)) {
    if (limited())
      return;
    return deny(unauthorized(req.remote_addr, "malformed Authorization header: expected Bearer jl_…", true));
  }
  auto hash = auth::sha256(token);
  const auto now = now_micros();
  if (auto e = cache_->find(hash);
      e && now - e->validated_at.load(std::memory_order_relaxed) <= auth::max_staleness_us)
    return admit(e, hash, req.remote_addr, now, ok, deny);
  // Not cached (or not confirmed lately): ask the auth actor, unless this address keeps failing.
  if (limited())
    return;
  auto actor = registry_->get<auth_actor>();
  if (!actor) {
    outcome().unavailable.inc();
    return deny(starting_response());
  }
  self->request(actor, std::chrono::seconds(3), verify_atom::value, hash)
      .then(
          [guard = shared_from_this(), hash, addr = req.remote_addr, ok, deny](auth::verdict& v) {
            if (!v.entry)
              return deny(guard->unauthorized(addr, "invalid, expired or revoked token", true));
            guard->admit(v.entry, hash, addr, now_micros(), ok, deny);
          },
          [deny](caf::error& e) {
            outcome().unavailable.inc();
            deny(error_response(e));
          });
}

} // namespace joule::http
