#pragma once
// The client's address behind reverse proxies (http.trusted_proxies). Behind HAProxy every
// TCP peer is HAProxy, so per-address limits and the access log need the address the proxy
// saw, which it appends to X-Forwarded-For. Only a trusted peer's header is believed, and only
// its right part: each trusted hop appends what it saw, so the list is walked from the right,
// skipping trusted hops; the first address that is not a trusted proxy is the client. Entries
// left of it were written by the client itself and could say anything (spoofing).

#include <string>
#include <string_view>
#include <vector>

#include "config/ip_ranges.hpp"

namespace joule::http {

/// Most X-Forwarded-For entries walked before giving up (then: the peer). Real chains have
/// a handful of hops; the bound keeps a huge header from costing more than a few microseconds.
constexpr int max_forwarded_hops = 32;

/// The client's address for a request from `peer` whose X-Forwarded-For fields (in the order
/// received; several fields count as one comma-joined list) are `forwarded`. Returns `peer`
/// when the peer is not trusted, the header is absent or anything in the walked part is
/// malformed; else the rightmost untrusted entry (or the leftmost one if all are trusted),
/// in canonical form. Never throws.
std::string client_address(const std::string& peer, const std::vector<std::string_view>& forwarded,
                           const config::ip_ranges& trusted);

} // namespace joule::http
