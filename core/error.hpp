#pragma once
// Joule's one error vocabulary. Domain code (db/, cache/, rules/) reports what went wrong as an
// `errc` plus a machine-readable slug and a human message; only http/ turns it into a status
// code and a JSON body (http/errors.cpp). Across actor boundaries it travels as a caf::error
// of category "joule" whose context holds the `failure`.

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/error.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace joule {

/// What kind of failure; each kind maps to one HTTP status in http/errors.cpp.
enum class errc : std::uint8_t {
  invalid = 1,   // the input is malformed (bad field, bad parameter)
  unprocessable, // well-formed, but names things that do not fit (unknown devices in a batch)
  not_found,     // the subject does not exist (or is not visible to the caller)
  forbidden,     // the caller may not do this
  conflict,      // the request conflicts with stored state
  timeout,       // a deadline passed before the work finished
  unavailable,   // a dependency (PostgreSQL, a restarting actor) cannot be reached; retry
  overloaded,    // a bounded queue is full; retry shortly
  internal,      // a bug or an unexpected database error; details only in the log
};

const char* to_string(errc e);

/// A failure with everything an answer needs.
struct failure {
  errc code = errc::internal;
  std::string slug;     // e.g. household_not_found, db_timeout, unknown_devices
  std::string message;  // for people; never internals
  /// Optional list attached to the answer, e.g. {"device_ids", [...]}.
  std::string list_name;
  std::vector<std::string> list;
};

/// Thrown by job code running on a DB worker (or any wrapper) to fail with a domain error; the
/// worker turns it into a caf::error. Exceptions never cross an actor boundary.
struct failure_error {
  failure what;
};

/// A caf::error carrying `f` (category "joule").
caf::error make_error(failure f);
caf::error make_error(errc code, std::string slug, std::string message);

/// The failure inside `e`. Errors from CAF itself (a request timed out, an actor is down) map to
/// timeout / unavailable, so every caf::error has an answer.
failure failure_of(const caf::error& e);

} // namespace joule

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(joule::failure)
