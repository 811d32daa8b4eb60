#pragma once
// What an HTTP handler sees: one parsed request in, one response out. The handler runs inside
// the connection's session actor (http/session_actor.hpp) and may talk to other actors through
// `self` before it replies. No Beast here: handlers never touch sockets.

#include <caf/allowed_unsafe_message_type.hpp>

#include <cctype>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace caf {
class event_based_actor;
} // namespace caf

namespace joule::http {

struct request {
  std::string method;
  std::string target;  // path and query, still percent-encoded
  std::string body;
  std::string content_type;
  /// Every header field as received (names as the client spelled them).
  std::vector<std::pair<std::string, std::string>> headers;
  /// The client's IP address (no port): the TCP peer's, or behind a trusted proxy the one it
  /// forwarded (http.trusted_proxies, http/forwarded.hpp). Per-address limits key on it.
  std::string remote_addr;
  /// The TCP peer's IP address (the proxy, behind one).
  std::string peer_addr;
  /// Set by the session: the client's X-Request-Id when sane, else a generated one. Echoed
  /// in the answer's X-Request-Id and in log lines.
  std::string request_id;

  /// The first header named `name` (case-insensitive), or "".
  std::string header(const std::string& name) const {
    for (auto& [k, v] : headers)
      if (k.size() == name.size() && equal_nocase(k, name))
        return v;
    return {};
  }

private:
  static bool equal_nocase(const std::string& a, const std::string& b) {
    for (std::size_t i = 0; i < a.size(); ++i)
      if (std::tolower(static_cast<unsigned char>(a[i])) !=
          std::tolower(static_cast<unsigned char>(b[i])))
        return false;
    return true;
  }
};

struct response {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
  /// For the access log only (never sent): the route's metrics name and the caller's token id.
  std::string route;
  std::string token_id;
};

/// Answers one request. Call it at most once (later calls are ignored), from the session
/// actor's own thread (cheapest: no extra message) or from any other thread (it then sends the
/// response to the session actor as a message). Calling it after the request's deadline or
/// after the connection closed does nothing.
using reply_fn = std::function<void(response)>;

/// Runs inside the connection's session actor, once per request, in request order (a request
/// with an unsafe method waits for the ones before it; see session_actor.hpp). Must not block:
/// ask other actors (`self->request(...).then(...)`, always with an error handler) and reply
/// later. An exception thrown from the call itself answers 500 `internal` for that request
/// only; one thrown later from a `.then` callback ends the session (see session_actor.hpp).
using handler_fn = std::function<void(caf::event_based_actor* self, request&&, reply_fn)>;

} // namespace joule::http

// Both travel in messages between a connection and its session actor (never serialized).
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(joule::http::request)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(joule::http::response)
