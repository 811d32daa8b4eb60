#include "common/url.hpp"

#include <cstdlib>
#include <stdexcept>

namespace joule::bench {

http_url http_url::parse(const std::string& text) {
  const std::string scheme = "http://";
  if (text.rfind(scheme, 0) != 0)
    throw std::invalid_argument("not an http:// URL: '" + text + "'");
  std::string rest = text.substr(scheme.size());
  http_url u;
  auto slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  if (slash != std::string::npos) {
    u.base_path = rest.substr(slash);
    while (!u.base_path.empty() && u.base_path.back() == '/')
      u.base_path.pop_back();
  }
  auto colon = authority.rfind(':');
  u.host = authority.substr(0, colon);
  if (colon != std::string::npos) {
    char* end = nullptr;
    long port = std::strtol(authority.c_str() + colon + 1, &end, 10);
    if (*end != '\0' || port <= 0 || port > 65535)
      throw std::invalid_argument("bad port in '" + text + "'");
    u.port = static_cast<uint16_t>(port);
  }
  if (u.host == "localhost")
    u.host = "127.0.0.1";
  if (u.host != "127.0.0.1")
    throw std::invalid_argument("only 127.0.0.1 targets are allowed: '" + text + "'");
  return u;
}

} // namespace joule::bench
