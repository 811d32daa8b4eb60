#include "core/error.hpp"

#include <caf/atom.hpp>
#include <caf/make_message.hpp>
#include <caf/message.hpp>
#include <caf/sec.hpp>

namespace joule {
namespace {

constexpr caf::atom_value category = caf::atom("joule");

} // namespace

const char* to_string(errc e) {
  switch (e) {
    case errc::invalid: return "invalid";
    case errc::unprocessable: return "unprocessable";
    case errc::not_found: return "not_found";
    case errc::forbidden: return "forbidden";
    case errc::conflict: return "conflict";
    case errc::timeout: return "timeout";
    case errc::unavailable: return "unavailable";
    case errc::overloaded: return "overloaded";
    case errc::internal: return "internal";
  }
  return "internal";
}

caf::error make_error(failure f) {
  auto code = static_cast<std::uint8_t>(f.code);
  return caf::error{code, category, caf::make_message(std::move(f))};
}

caf::error make_error(errc code, std::string slug, std::string message) {
  failure f;
  f.code = code;
  f.slug = std::move(slug);
  f.message = std::move(message);
  return make_error(std::move(f));
}

failure failure_of(const caf::error& e) {
  if (e.category() == category && e.context().match_elements<failure>())
    return e.context().get_as<failure>(0);
  failure f;
  if (e.category() == caf::atom("system")) {
    switch (static_cast<caf::sec>(e.code())) {
      case caf::sec::request_timeout:
        f.code = errc::timeout;
        f.slug = "timeout";
        f.message = "the request took too long; retry later";
        return f;
      case caf::sec::request_receiver_down:
      case caf::sec::invalid_argument:
      default:
        break;
    }
  }
  f.code = errc::unavailable;
  f.slug = "unavailable";
  f.message = "a server component is not answering; retry shortly";
  return f;
}

} // namespace joule
