#include "rules/target_policy.hpp"

#include <cctype>
#include <cstdint>

#include <arpa/inet.h>

namespace joule::rules {
namespace {

using boost::asio::ip::address;
using boost::asio::ip::address_v4;
using boost::asio::ip::address_v6;

struct v4_range {
  std::uint32_t net;
  int prefix;
  address_scope scope;
  const char* name;
};

constexpr std::uint32_t ip4(unsigned a, unsigned b, unsigned c, unsigned d) {
  return (a << 24) | (b << 16) | (c << 8) | d;
}

// IANA IPv4 Special-Purpose Address Registry: every block that is not globally reachable
// (AS112 and AMT anycast, which are, stay public).
const v4_range v4_ranges[] = {
    {ip4(0, 0, 0, 0), 8, address_scope::never, "\"this network\" 0.0.0.0/8"},
    {ip4(10, 0, 0, 0), 8, address_scope::non_public, "private-use 10.0.0.0/8"},
    {ip4(100, 64, 0, 0), 10, address_scope::non_public, "shared address space (CGNAT) 100.64.0.0/10"},
    {ip4(127, 0, 0, 0), 8, address_scope::non_public, "loopback 127.0.0.0/8"},
    {ip4(169, 254, 0, 0), 16, address_scope::non_public, "link-local 169.254.0.0/16"},
    {ip4(172, 16, 0, 0), 12, address_scope::non_public, "private-use 172.16.0.0/12"},
    {ip4(192, 0, 0, 0), 24, address_scope::non_public, "IETF protocol assignments 192.0.0.0/24"},
    {ip4(192, 0, 2, 0), 24, address_scope::non_public, "documentation 192.0.2.0/24"},
    {ip4(192, 88, 99, 0), 24, address_scope::non_public, "6to4 relay anycast 192.88.99.0/24"},
    {ip4(192, 168, 0, 0), 16, address_scope::non_public, "private-use 192.168.0.0/16"},
    {ip4(198, 18, 0, 0), 15, address_scope::non_public, "benchmarking 198.18.0.0/15"},
    {ip4(198, 51, 100, 0), 24, address_scope::non_public, "documentation 198.51.100.0/24"},
    {ip4(203, 0, 113, 0), 24, address_scope::non_public, "documentation 203.0.113.0/24"},
    {ip4(224, 0, 0, 0), 4, address_scope::never, "multicast 224.0.0.0/4"},
    {ip4(240, 0, 0, 0), 4, address_scope::never, "reserved and broadcast 240.0.0.0/4"},
};

address_class classify_v4(std::uint32_t a) {
  for (const auto& r : v4_ranges) {
    std::uint32_t mask = r.prefix == 0 ? 0 : ~std::uint32_t{0} << (32 - r.prefix);
    if ((a & mask) == r.net)
      return {r.scope, r.name};
  }
  return {};
}

using bytes16 = address_v6::bytes_type;

// True when the first `prefix` bits of `a` equal those of `net`.
bool in_prefix(const bytes16& a, const bytes16& net, int prefix) {
  int i = 0;
  for (; prefix >= 8; prefix -= 8, ++i)
    if (a[i] != net[i])
      return false;
  if (prefix == 0)
    return true;
  auto mask = static_cast<unsigned char>(0xff << (8 - prefix));
  return (a[i] & mask) == (net[i] & mask);
}

bytes16 v6(const char* text) { return boost::asio::ip::make_address_v6(text).to_bytes(); }

std::uint32_t v4_at(const bytes16& b, int offset) {
  return (std::uint32_t{b[offset]} << 24) | (std::uint32_t{b[offset + 1]} << 16) |
         (std::uint32_t{b[offset + 2]} << 8) | std::uint32_t{b[offset + 3]};
}

// IPv6 forms that carry an IPv4 address a packet may end up at: judged by that address, so
// ::ffff:127.0.0.1 is loopback and 64:ff9b::a00:1 is private-use.
struct embedding {
  bytes16 net;
  int prefix;
  int v4_offset;
  const char* name;
};

struct v6_range {
  bytes16 net;
  int prefix;
  address_scope scope;
  const char* name;
};

address_class classify_v6(const bytes16& b) {
  static const embedding embeddings[] = {
      {v6("::ffff:0:0"), 96, 12, "IPv4-mapped"},
      {v6("::ffff:0:0:0"), 96, 12, "IPv4-translated"},
      {v6("64:ff9b::"), 96, 12, "NAT64"},
      {v6("2002::"), 16, 2, "6to4"},
  };
  static const v6_range ranges[] = {
      {v6("::"), 128, address_scope::never, "unspecified ::/128"},
      {v6("::1"), 128, address_scope::non_public, "loopback ::1/128"},
      {v6("::"), 96, address_scope::non_public, "IPv4-compatible (deprecated) ::/96"},
      {v6("64:ff9b:1::"), 48, address_scope::non_public, "local-use NAT64 64:ff9b:1::/48"},
      {v6("100::"), 64, address_scope::non_public, "discard-only 100::/64"},
      {v6("2001::"), 23, address_scope::non_public,
       "IETF protocol assignments (Teredo, benchmarking, ...) 2001::/23"},
      {v6("2001:db8::"), 32, address_scope::non_public, "documentation 2001:db8::/32"},
      {v6("3fff::"), 20, address_scope::non_public, "documentation 3fff::/20"},
      {v6("5f00::"), 16, address_scope::non_public, "segment routing 5f00::/16"},
      {v6("fc00::"), 7, address_scope::non_public, "unique local (ULA) fc00::/7"},
      {v6("fe80::"), 10, address_scope::non_public, "link-local fe80::/10"},
      {v6("fec0::"), 10, address_scope::non_public, "site-local (deprecated) fec0::/10"},
      {v6("ff00::"), 8, address_scope::never, "multicast ff00::/8"},
  };
  static const bytes16 global_unicast = v6("2000::");
  for (const auto& e : embeddings) {
    if (!in_prefix(b, e.net, e.prefix))
      continue;
    auto inner = classify_v4(v4_at(b, e.v4_offset));
    if (inner.scope != address_scope::public_unicast)
      inner.range = std::string(e.name) + " " + inner.range;
    return inner;
  }
  for (const auto& r : ranges)
    if (in_prefix(b, r.net, r.prefix))
      return {r.scope, r.name};
  if (!in_prefix(b, global_unicast, 3))
    return {address_scope::non_public, "outside global unicast 2000::/3"};
  return {};
}

} // namespace

address_class classify_address(const address& a) {
  if (a.is_v4())
    return classify_v4(a.to_v4().to_uint());
  return classify_v6(a.to_v6().to_bytes());
}

bool target_address_allowed(const address& a, bool allow_private_targets) {
  switch (classify_address(a).scope) {
    case address_scope::public_unicast: return true;
    case address_scope::non_public: return allow_private_targets;
    case address_scope::never: return false;
  }
  return false;
}

std::optional<address> literal_address(const std::string& host) {
  boost::system::error_code ec;
  auto a = boost::asio::ip::make_address(host, ec);  // dotted quad, IPv6 (with a zone)
  if (!ec)
    return a;
  // What getaddrinfo also accepts as a numeric IPv4 host: one to four parts, each decimal,
  // octal (leading 0) or hex (0x). inet_aton ignores anything after a space, so only the
  // characters such a literal can contain are let through.
  for (char c : host)
    if (!std::isxdigit(static_cast<unsigned char>(c)) && c != '.' && c != 'x' && c != 'X')
      return std::nullopt;
  in_addr v4{};
  if (::inet_aton(host.c_str(), &v4) != 0)
    return address(address_v4(ntohl(v4.s_addr)));
  return std::nullopt;
}

} // namespace joule::rules
