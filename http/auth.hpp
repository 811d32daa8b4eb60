#pragma once
// Authentication of HTTP requests: `Authorization: Bearer jl_…` checked against the shared
// token cache (no database round trip for a cached token), the auth actor on a miss, per-token
// rate limits, and per-address limits on failed attempts. The answers (401/403/429) are built
// here; routing and scopes are applied by http::dispatch (routes.cpp).

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <caf/event_based_actor.hpp>

#include "core/auth.hpp"
#include "core/registry.hpp"
#include "http/server.hpp"

namespace joule::http {

struct auth_settings {
  bool required = true;
  double rate_limit = 1000;  // per token, requests/s; 0: unlimited
  double rate_burst = 2000;
  double failure_rate_limit = 5;  // per client address; 0: unlimited
  double failure_burst = 20;
  std::size_t max_addresses = 10000;  // remembered client addresses (bounded memory)
};

class auth_guard : public std::enable_shared_from_this<auth_guard> {
public:
  auth_guard(auth_settings s, std::shared_ptr<auth::token_cache> cache,
             std::shared_ptr<service_registry> registry);

  /// Who sent `req`: calls `ok` with the caller's identity, or `deny` with a 401 (missing,
  /// malformed, unknown, expired or revoked token), 429 (rate limited) or 503 (tokens cannot
  /// be verified). Synchronous for a cached token; otherwise asks the auth actor from `self`.
  void authenticate(caf::event_based_actor* self, const request& req,
                    std::function<void(auth::identity)> ok,
                    std::function<void(response)> deny);

  /// The part of `authenticate` that needs no token lookup, for a request head whose body has
  /// not been read (Expect: 100-continue): 401 when credentials are required and missing or
  /// malformed, 429 when the address keeps failing; nullopt when only the full check can tell.
  /// Counts a failure like `authenticate`. Thread-safe (runs on an I/O thread).
  std::optional<response> check_head(const request& req);

  const auth_settings& settings() const { return settings_; }

  /// New rate limits (SIGHUP reload), for the next request; gates keep their state.
  void set_limits(double rate_limit, double rate_burst, double failure_rate_limit,
                  double failure_burst);

private:
  response unauthorized(const std::string& addr, const std::string& message, bool invalid_token);
  /// Checks expiry and the token's rate limit; answers ok or deny.
  void admit(const std::shared_ptr<auth::token_entry>& e, const std::string& hash,
             const std::string& addr, std::int64_t now,
             const std::function<void(auth::identity)>& ok,
             const std::function<void(response)>& deny);

  auth_settings settings_;
  // The live-changeable limits, read per request (settings_ holds their start-up values).
  std::atomic<double> rate_limit_;
  std::atomic<double> rate_burst_;
  std::atomic<double> failure_rate_limit_;
  std::atomic<double> failure_burst_;
  std::shared_ptr<auth::token_cache> cache_;
  std::shared_ptr<service_registry> registry_;
  auth::keyed_gates failures_;
};

/// 403 for a valid token without `need`.
response forbidden_response(auth::scope need);

/// 429 with Retry-After (whole seconds, at least 1) for a wait of `wait_us`.
response rate_limited_response(std::int64_t wait_us, const std::string& message);

} // namespace joule::http
