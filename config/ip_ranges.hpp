#pragma once
// IP addresses and CIDR ranges (IPv4 and IPv6) as in http.trusted_proxies. In config/ so that
// the setting is validated where it is loaded; config/ depends on nothing, hence inet_pton
// rather than Boost.Asio.

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace joule::config {

/// One address, always 16 bytes: IPv4 is held IPv4-mapped (::ffff:a.b.c.d), so that a peer
/// seen on a dual-stack socket as ::ffff:127.0.0.1 matches 127.0.0.1.
struct ip_address {
  std::array<std::uint8_t, 16> bytes{};
  bool v4 = false;
  /// Canonical text (inet_ntop): "10.0.0.1", "2001:db8::1".
  std::string to_string() const;
};

/// Parses a bare address ("10.0.0.1", "2001:db8::1", "::ffff:10.0.0.1"); nothing else.
std::optional<ip_address> parse_ip(std::string_view text);

struct ip_range {
  ip_address base;
  int prefix = 128;  // over the 16-byte form (an IPv4 /24 is stored as /120)
  bool contains(const ip_address& a) const;
};

/// A list of ranges: "10.0.0.0/8, 127.0.0.1, ::1, fd00::/8". Empty text: empty list.
class ip_ranges {
public:
  /// Parses `text`; on failure returns nullopt and sets `error`.
  static std::optional<ip_ranges> parse(const std::string& text, std::string& error);
  bool contains(const ip_address& a) const;
  bool empty() const { return ranges_.empty(); }

private:
  std::vector<ip_range> ranges_;
};

} // namespace joule::config
