#pragma once
// The one place where failures become HTTP answers: errc → status code, JSON error body
// `{"error":{"code","message"}}`, and Retry-After for the "come back shortly" kinds.

#include <string>

#include <caf/error.hpp>

#include "core/error.hpp"
#include "http/router.hpp"
#include "http/server.hpp"

namespace joule::http {

/// The status code of a failure kind (invalid 400, unprocessable 422, not_found 404,
/// forbidden 403, conflict 409,
/// timeout/unavailable/overloaded 503 with Retry-After, internal 500).
int status_of(errc code);

response error_response(const failure& f);
response error_response(const caf::error& e);
/// For the HTTP layer's own answers (404 route, 405, 413, parameter validation).
response error_response(int status, const std::string& code, const std::string& message);
response error_response(const api_error& e);

/// 503 "starting": the actor that would answer is (re)starting.
response starting_response();

} // namespace joule::http
