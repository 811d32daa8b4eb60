#include "config/ip_ranges.hpp"

#include <arpa/inet.h>

#include <cstring>

namespace joule::config {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

} // namespace

std::optional<ip_address> parse_ip(std::string_view text) {
  // inet_pton needs a NUL-terminated string; the longest textual IPv6 address is 45 chars.
  char buf[64];
  if (text.empty() || text.size() >= sizeof buf ||
      std::memchr(text.data(), '\0', text.size()) != nullptr)  // inet_pton would stop there
    return std::nullopt;
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';
  ip_address a;
  unsigned char v4[4];
  if (inet_pton(AF_INET, buf, v4) == 1) {
    a.bytes[10] = a.bytes[11] = 0xff;
    std::memcpy(a.bytes.data() + 12, v4, 4);
    a.v4 = true;
    return a;
  }
  if (inet_pton(AF_INET6, buf, a.bytes.data()) != 1)
    return std::nullopt;
  static const std::uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  a.v4 = std::memcmp(a.bytes.data(), mapped, 12) == 0;
  return a;
}

std::string ip_address::to_string() const {
  char buf[INET6_ADDRSTRLEN];
  const char* r = v4 ? inet_ntop(AF_INET, bytes.data() + 12, buf, sizeof buf)
                     : inet_ntop(AF_INET6, bytes.data(), buf, sizeof buf);
  return r ? std::string(r) : std::string();
}

bool ip_range::contains(const ip_address& a) const {
  int full = prefix / 8;
  if (std::memcmp(base.bytes.data(), a.bytes.data(), static_cast<std::size_t>(full)) != 0)
    return false;
  int rest = prefix % 8;
  if (rest == 0)
    return true;
  auto mask = static_cast<std::uint8_t>(0xff << (8 - rest));
  return (base.bytes[full] & mask) == (a.bytes[full] & mask);
}

std::optional<ip_ranges> ip_ranges::parse(const std::string& text, std::string& error) {
  ip_ranges out;
  std::string_view rest = text;
  while (!trim(rest).empty()) {
    auto comma = rest.find(',');
    auto item = trim(rest.substr(0, comma));
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    if (item.empty()) {
      error = "empty entry in the list";
      return std::nullopt;
    }
    auto slash = item.find('/');
    auto addr = parse_ip(item.substr(0, slash));
    if (!addr) {
      error = "'" + std::string(item) + "' is not an IP address or CIDR range";
      return std::nullopt;
    }
    ip_range r;
    r.base = *addr;
    int max = addr->v4 ? 32 : 128;
    int bits = max;
    if (slash != std::string_view::npos) {
      auto digits = item.substr(slash + 1);
      bits = -1;
      if (!digits.empty() && digits.size() <= 3) {
        bits = 0;
        for (char c : digits)
          bits = (c >= '0' && c <= '9') ? bits * 10 + (c - '0') : 1000;
      }
      if (bits < 0 || bits > max) {
        error = "'" + std::string(item) + "': prefix length must be 0-" + std::to_string(max);
        return std::nullopt;
      }
    }
    r.prefix = addr->v4 ? bits + 96 : bits;
    out.ranges_.push_back(r);
  }
  return out;
}

bool ip_ranges::contains(const ip_address& a) const {
  for (auto& r : ranges_)
    if (r.contains(a))
      return true;
  return false;
}

} // namespace joule::config
