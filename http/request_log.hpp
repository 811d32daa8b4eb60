#pragma once
// Request ids and the access log. Every request gets an id: the client's `X-Request-Id` when
// it is sane (1-128 characters of A-Z a-z 0-9 . _ : -), else a generated one. The id is
// echoed in the answer's `X-Request-Id`, carried by log lines written while the request's
// handler runs, and written in the access line (log.access) of each answered request.

#include <chrono>
#include <string>

#include "http/handler.hpp"

namespace joule::http {

/// The id for `req` (its sane X-Request-Id, or 16 random hex digits).
std::string request_id_for(const request& req);

/// True when `id` may be taken from a client as it is (and written into logs and headers).
bool sane_request_id(const std::string& id);

/// What the access line needs of a request (kept while the handler has the request itself).
struct access_entry {
  std::string request_id;
  std::string method;
  std::string target;
  std::string remote;  // the client (behind a trusted proxy: the address it forwarded)
  std::chrono::steady_clock::time_point received;
  std::string peer = {};  // the TCP peer (the proxy, behind one); empty: the same as remote
};

/// Adds X-Request-Id to `r` and, when log.access is on, writes the access line.
void finish_response(const access_entry& e, response& r);

} // namespace joule::http
