#pragma once
// `joule status`: a summary of a running server for a terminal, from GET /admin/status and
// GET /metrics (both need an admin token).

#include <string>

namespace joule {

struct status_options {
  std::string url;    // http://host:port (plain HTTP)
  std::string token;  // Bearer token; empty: none (a server with auth.required = false)
};

/// Prints the summary to stdout; returns the exit code (0 ok, 1 the server could not be asked
/// or refused, with a message on stderr).
int run_status(const status_options& o);

/// "key=value ..." lines from a JSON object, one per top-level member, nested objects
/// flattened with dots (for the summary; exposed for tests).
std::string summarize_status(const std::string& json);

} // namespace joule
