#include "http/errors.hpp"

#include "http/render.hpp"

namespace joule::http {

int status_of(errc code) {
  switch (code) {
    case errc::invalid: return 400;
    case errc::unprocessable: return 422;
    case errc::not_found: return 404;
    case errc::forbidden: return 403;
    case errc::conflict: return 409;
    case errc::timeout:
    case errc::unavailable:
    case errc::overloaded: return 503;
    case errc::internal: return 500;
  }
  return 500;
}

response error_response(int status, const std::string& code, const std::string& message) {
  response r;
  r.status = status;
  r.body = render_error(code, message);
  // Overload, deadlines and an unreachable database are all "come back shortly".
  if (status == 503)
    r.headers.emplace_back("Retry-After", "1");
  return r;
}

response error_response(const failure& f) {
  auto r = error_response(status_of(f.code), f.slug, f.message);
  if (!f.list_name.empty())
    r.body = render_error(f.slug, f.message, f.list_name, f.list);
  return r;
}

response error_response(const caf::error& e) { return error_response(failure_of(e)); }

response error_response(const api_error& e) {
  return error_response(e.status, e.code, e.message);
}

response starting_response() {
  return error_response(503, "starting", "the server is (re)starting; retry shortly");
}

} // namespace joule::http
