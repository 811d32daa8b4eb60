#pragma once
// Which network addresses a webhook may reach. A rule author chooses the URL, so without this
// any client that may create rules could make the server POST to its own loopback services,
// the cloud metadata endpoint (169.254.169.254) or the private network behind it, and read
// the outcome back from /alerts/events. Pure functions; the webhook client applies them to
// every address a name resolves to, at every attempt, and connects only to the addresses it
// checked.

#include <optional>
#include <string>

#include <boost/asio/ip/address.hpp>

namespace joule::rules {

enum class address_scope {
  public_unicast,  // globally routable: always allowed
  non_public,      // loopback, private, link-local, CGNAT, ULA, documentation, ...:
                   // allowed only with alerts.allow_private_targets
  never,           // unspecified, multicast, broadcast/reserved: never a TCP peer
};

struct address_class {
  address_scope scope = address_scope::public_unicast;
  /// The special-purpose range matched, e.g. "link-local 169.254.0.0/16"; IPv4 embedded in
  /// IPv6 (mapped, NAT64, 6to4) is classified by the IPv4 address and says so. Empty for
  /// public addresses.
  std::string range;
};

/// Classifies `a` against the IANA special-purpose registries (IPv4 and IPv6). IPv6 outside
/// 2000::/3 (the only space allocated for global unicast) is never public.
address_class classify_address(const boost::asio::ip::address& a);

/// True when a webhook may connect to `a`.
bool target_address_allowed(const boost::asio::ip::address& a, bool allow_private_targets);

/// The address a URL host denotes when it is a literal, read the way the resolver reads it
/// (getaddrinfo accepts inet_aton's forms: `127.1`, `0x7f.0.0.1`, `2130706433`); IPv6
/// without brackets, optionally with a zone (`fe80::1%eth0`). nullopt for a host name.
std::optional<boost::asio::ip::address> literal_address(const std::string& host);

} // namespace joule::rules
