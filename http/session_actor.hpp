#pragma once
// One event-based CAF actor per HTTP connection: it owns that connection's request pipeline.
//
// The socket side (http/server.cpp, Beast on a strand) parses requests, reads ahead at most
// `pipeline_limit` of them (then stops reading: back-pressure through TCP) and hands each one
// to the session actor as a `pipelined_request` message. The actor runs the handler, enforces
// each request's deadline and hands the answers back through a `connection_sink`, strictly in
// request order (HTTP/1.1 pipelining). It is the natural home for per-connection state: the
// caller's identity once auth exists, a rate limiter, the failure boundary of one connection.
//
// Ordering (RFC 9112 §9.3.2): requests with safe methods (GET, HEAD, OPTIONS, TRACE) run side
// by side; a request with any other method starts only when every request before it has been
// answered, and the requests after it wait until it is answered, so side effects happen in the
// order the client sent them. A request answered 503 at its deadline counts as answered (its
// handler may still be running: a late side effect is possible, as with any timeout).
//
// Failure boundary: a handler that throws answers 500 `internal` for that request only. An
// exception thrown later, inside a callback the handler registered with `self`, cannot be
// pinned on one request: it ends the session, every unanswered request gets 500 `internal`
// and the connection closes after them. Either way the server keeps serving.

#include <caf/actor.hpp>
#include <caf/atom.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>

#include "http/handler.hpp"

namespace caf {
class actor_system;
} // namespace caf

namespace joule::http {

struct session_config {
  /// Most requests of one connection read but not yet answered. The socket side stops reading
  /// at this bound; the actor answers anything beyond it 503 `overloaded` and closes.
  std::size_t pipeline_limit = 16;
  /// A request not answered this long after it reached the actor is answered 503 `timeout`
  /// with Retry-After; the handler's late reply is dropped.
  std::chrono::milliseconds request_timeout{5000};
};

/// The socket side of one connection, as the session actor sees it (the Beast connection
/// implements it; tests use a fake). Called only from the session actor; must not block.
class connection_sink {
public:
  virtual ~connection_sink() = default;
  /// Writes `r`, the answer to the oldest request not answered yet; when `close` is true the
  /// connection closes after writing it (no request is answered after it).
  virtual void deliver(response r, bool close) = 0;
  /// Closes the connection at once, without another answer (the session failed with nothing
  /// left to answer).
  virtual void abort() = 0;
};

/// One request read from the connection, numbered in arrival order.
struct pipelined_request {
  std::uint64_t seq = 0;
  request req;
  /// False for `Connection: close` (or HTTP/1.0 without keep-alive): close after answering it.
  bool keep_alive = true;
  /// Set when the socket side already refused the request (400 malformed, 413 body too
  /// large, 431 head too large): the actor answers it with this, in order, then closes.
  std::optional<response> refused;
};

// --- messages the session actor handles (atoms are at most 10 characters)
/// Internal: a reply that came from another thread: (reply atom, seq, response).
using session_reply_atom = caf::atom_constant<caf::atom("sessreply")>;
/// From the socket side: the connection is closed; the session ends.
using session_closed_atom = caf::atom_constant<caf::atom("sessclosed")>;
/// Internal: the oldest unanswered request's deadline may have passed.
using session_tick_atom = caf::atom_constant<caf::atom("sesstick")>;

/// Spawns the session actor of one connection. It handles `pipelined_request` and
/// `session_closed_atom` (after which it quits). While it lives, the gauge
/// `joule_http_sessions` counts it.
caf::actor spawn_session(caf::actor_system& sys, session_config cfg,
                         std::shared_ptr<const handler_fn> handler,
                         std::shared_ptr<connection_sink> sink);

} // namespace joule::http

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(joule::http::pipelined_request)
