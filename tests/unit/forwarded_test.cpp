// http.trusted_proxies: the IP/CIDR list and the X-Forwarded-For walk (http/forwarded.hpp).
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "config/ip_ranges.hpp"
#include "config/settings.hpp"
#include "http/forwarded.hpp"

using namespace joule;
using config::ip_ranges;

namespace {

ip_ranges ranges(const std::string& text) {
  std::string err;
  auto r = ip_ranges::parse(text, err);
  EXPECT_TRUE(r) << text << ": " << err;
  return r ? *r : ip_ranges{};
}

bool in(const std::string& list, const std::string& addr) {
  auto a = config::parse_ip(addr);
  EXPECT_TRUE(a) << addr;
  return a && ranges(list).contains(*a);
}

std::string client(const std::string& peer, std::vector<std::string_view> xff,
                   const std::string& trusted) {
  return http::client_address(peer, xff, ranges(trusted));
}

} // namespace

TEST(IpRanges, AddressesAndCidrsOfBothFamilies) {
  EXPECT_TRUE(in("127.0.0.1", "127.0.0.1"));
  EXPECT_FALSE(in("127.0.0.1", "127.0.0.2"));
  EXPECT_TRUE(in("10.0.0.0/8", "10.255.1.2"));
  EXPECT_FALSE(in("10.0.0.0/8", "11.0.0.1"));
  EXPECT_TRUE(in("192.168.4.0/22", "192.168.7.255"));
  EXPECT_FALSE(in("192.168.4.0/22", "192.168.8.0"));
  EXPECT_TRUE(in("0.0.0.0/0", "8.8.8.8"));
  EXPECT_FALSE(in("0.0.0.0/0", "2001:db8::1"));  // an IPv4 range holds no IPv6 address
  EXPECT_TRUE(in("::1", "::1"));
  EXPECT_TRUE(in("2001:db8::/32", "2001:db8:ffff::1"));
  EXPECT_FALSE(in("2001:db8::/32", "2001:db9::1"));
  EXPECT_TRUE(in("fd00::/8", "fdab::1"));
  // A dual-stack socket shows an IPv4 peer as ::ffff:a.b.c.d.
  EXPECT_TRUE(in("127.0.0.1", "::ffff:127.0.0.1"));
  EXPECT_TRUE(in(" 10.0.0.1 ,  ::1 ", "::1"));
  EXPECT_TRUE(ranges("").empty());
}

TEST(IpRanges, MalformedListsAreRefusedWithTheEntry) {
  for (std::string bad : {"10.0.0.0/33", "::/129", "10.0.0.1/", "10.0.0.1/x", "300.1.1.1",
                          "localhost", "10.0.0.1,,10.0.0.2", "10.0.0.0/8/8", "1.2.3.4/-1",
                          "2001:db8::/0032"}) {
    std::string err;
    EXPECT_FALSE(ip_ranges::parse(bad, err)) << bad;
    EXPECT_FALSE(err.empty()) << bad;
  }
}

TEST(IpRanges, TheSettingIsValidatedAndDefaultsToEmpty) {
  auto none = [](const char*) -> const char* { return nullptr; };
  auto r = config::load({"--http.trusted_proxies=127.0.0.1, 10.0.0.0/8, ::1"}, none, "");
  EXPECT_TRUE(r.error.empty()) << r.error;
  EXPECT_EQ(r.values.http_trusted_proxies, "127.0.0.1, 10.0.0.0/8, ::1");
  r = config::load({"--http.trusted_proxies=10.0.0.0/40"}, none, "");
  EXPECT_NE(r.error.find("http.trusted_proxies"), std::string::npos) << r.error;
  EXPECT_EQ(config::settings{}.http_trusted_proxies, "");
}

TEST(Forwarded, WithoutTrustTheHeaderIsIgnored) {
  EXPECT_EQ(client("127.0.0.1", {"203.0.113.1"}, ""), "127.0.0.1");
  EXPECT_EQ(client("192.0.2.9", {"203.0.113.1"}, "127.0.0.1"), "192.0.2.9");
  EXPECT_EQ(client("127.0.0.1", {}, "127.0.0.1"), "127.0.0.1");
}

TEST(Forwarded, TheRightmostUntrustedHopIsTheClient) {
  EXPECT_EQ(client("127.0.0.1", {"203.0.113.1"}, "127.0.0.1"), "203.0.113.1");
  // The client wrote the left part itself: whatever it says is not believed.
  EXPECT_EQ(client("127.0.0.1", {"1.1.1.1, 10.9.9.9, 203.0.113.1"}, "127.0.0.1"), "203.0.113.1");
  // Trusted hops are skipped from the right: client → 10.0.0.5 (inner proxy) → us.
  EXPECT_EQ(client("127.0.0.1", {"198.51.100.4, 203.0.113.1,10.0.0.5"}, "127.0.0.1,10.0.0.0/8"),
            "203.0.113.1");
  // Several fields are one list, in order; the proxy's field comes last.
  EXPECT_EQ(client("127.0.0.1", {"6.6.6.6", "203.0.113.7"}, "127.0.0.1"), "203.0.113.7");
  EXPECT_EQ(client("127.0.0.1", {"203.0.113.7", "10.0.0.5"}, "127.0.0.1,10.0.0.0/8"),
            "203.0.113.7");
  // All hops trusted: the leftmost.
  EXPECT_EQ(client("127.0.0.1", {"10.0.0.1, 10.0.0.2"}, "127.0.0.1,10.0.0.0/8"), "10.0.0.1");
}

TEST(Forwarded, Ipv6AndPortsAndCanonicalForm) {
  EXPECT_EQ(client("::1", {"2001:DB8:0:0::1"}, "::1"), "2001:db8::1");
  EXPECT_EQ(client("::1", {"[2001:db8::1]:4711"}, "::1"), "2001:db8::1");
  EXPECT_EQ(client("::1", {"[2001:db8::1]"}, "::1"), "2001:db8::1");
  EXPECT_EQ(client("127.0.0.1", {"203.0.113.1:5555"}, "127.0.0.1"), "203.0.113.1");
  EXPECT_EQ(client("::ffff:127.0.0.1", {"203.0.113.1"}, "127.0.0.0/8"), "203.0.113.1");
  EXPECT_EQ(client("127.0.0.1", {"::ffff:203.0.113.1"}, "127.0.0.1"), "203.0.113.1");
}

TEST(Forwarded, GarbageFallsBackToThePeer) {
  for (const std::string& bad : std::vector<std::string>{"", " ", ",", "unknown", "203.0.113.1,", "203.0.113.1, garbage",
                          "[2001:db8::1", "[::1]x", "1.2.3.4.5", "203.0.113.1;drop table",
                          "\"203.0.113.1\"", "_hidden", std::string("1.2.3.4\0", 8),
                          "2001:db8::1:80:90:1:2:3:4"})
    EXPECT_EQ(client("127.0.0.1", {bad}, "127.0.0.1"), "127.0.0.1") << bad;
  // Garbage left of the client is never reached (and never matters).
  EXPECT_EQ(client("127.0.0.1", {"<script>, 203.0.113.1"}, "127.0.0.1"), "203.0.113.1");
}

TEST(Forwarded, ManyHopsAreBoundedAndAHugeHeaderIsCheap) {
  std::string chain = "203.0.113.1";
  for (int i = 0; i < http::max_forwarded_hops - 2; ++i)
    chain += ", 10.0.0." + std::to_string(i % 250);
  EXPECT_EQ(client("127.0.0.1", {chain}, "127.0.0.1,10.0.0.0/8"), "203.0.113.1");
  std::string longer = chain;
  for (int i = 0; i < 10; ++i)
    longer += ", 10.0.1.1";
  EXPECT_EQ(client("127.0.0.1", {longer}, "127.0.0.1,10.0.0.0/8"), "127.0.0.1");
  // 1 MB of trusted hops (far past any header limit): stops after the bound, fast.
  std::string huge;
  while (huge.size() < (1u << 20))
    huge += "10.0.0.1,";
  huge += "10.0.0.1";
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(client("127.0.0.1", {huge}, "127.0.0.1,10.0.0.0/8"), "127.0.0.1");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(50));
  // The same with a huge untrusted entry: refused as an address, no copy of it kept.
  EXPECT_EQ(client("127.0.0.1", {std::string(1 << 20, '1')}, "127.0.0.1"), "127.0.0.1");
}
