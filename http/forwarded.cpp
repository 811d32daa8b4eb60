#include "http/forwarded.hpp"

#include <optional>

namespace joule::http {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

// One list entry: "1.2.3.4", "2001:db8::1", "[2001:db8::1]", and with a port "1.2.3.4:80" or
// "[2001:db8::1]:80" (some proxies add it). "unknown" and obfuscated names are not addresses.
std::optional<config::ip_address> parse_entry(std::string_view e) {
  e = trim(e);
  if (!e.empty() && e.front() == '[') {
    auto close = e.find(']');
    if (close == std::string_view::npos)
      return std::nullopt;
    auto after = e.substr(close + 1);
    if (!after.empty() && after.front() != ':')
      return std::nullopt;
    return config::parse_ip(e.substr(1, close - 1));
  }
  auto colon = e.find(':');
  if (colon != std::string_view::npos && e.find(':', colon + 1) == std::string_view::npos)
    e = e.substr(0, colon);  // exactly one colon: IPv4 with a port
  return config::parse_ip(e);
}

} // namespace

std::string client_address(const std::string& peer, const std::vector<std::string_view>& forwarded,
                           const config::ip_ranges& trusted) {
  if (trusted.empty() || forwarded.empty())
    return peer;
  auto p = config::parse_ip(peer);
  if (!p || !trusted.contains(*p))
    return peer;
  std::optional<config::ip_address> last;  // the leftmost entry walked so far
  int hops = 0;
  for (auto f = forwarded.rbegin(); f != forwarded.rend(); ++f) {
    std::string_view rest = *f;
    while (true) {
      auto comma = rest.rfind(',');
      auto item = comma == std::string_view::npos ? rest : rest.substr(comma + 1);
      if (++hops > max_forwarded_hops)
        return peer;
      auto a = parse_entry(item);
      if (!a)
        return peer;  // garbage where a trusted hop should have written an address
      if (!trusted.contains(*a))
        return a->to_string();
      last = a;
      if (comma == std::string_view::npos)
        break;
      rest = rest.substr(0, comma);
    }
  }
  // Every entry is a trusted proxy (a health check from a proxy host, say): the leftmost one.
  return last ? last->to_string() : peer;
}

} // namespace joule::http
