// Webhook target address policy (pure): IPv4, IPv6 and IPv4 embedded in IPv6, literal hosts
// read the way the resolver reads them, and the write-time check of rule bodies.
#include <gtest/gtest.h>

#include "rules/rule.hpp"
#include "rules/target_policy.hpp"

namespace joule::rules {
namespace {

address_scope scope_of(const std::string& text) {
  return classify_address(boost::asio::ip::make_address(text)).scope;
}

TEST(TargetPolicy, IPv4SpecialPurposeRanges) {
  for (const char* a : {"127.0.0.1", "127.255.255.254", "10.0.0.1", "10.255.255.255",
                        "172.16.0.1", "172.31.255.255", "192.168.1.1", "169.254.169.254",
                        "100.64.0.1", "100.127.255.255", "192.0.0.8", "192.0.2.1",
                        "198.18.0.1", "198.19.255.255", "198.51.100.7", "203.0.113.9",
                        "192.88.99.1"})
    EXPECT_EQ(scope_of(a), address_scope::non_public) << a;
  for (const char* a : {"0.0.0.0", "0.1.2.3", "224.0.0.1", "239.255.255.250", "240.0.0.1",
                        "255.255.255.255"})
    EXPECT_EQ(scope_of(a), address_scope::never) << a;
  // Neighbours of the ranges are public.
  for (const char* a : {"8.8.8.8", "1.1.1.1", "9.255.255.255", "11.0.0.0", "100.63.255.255",
                        "100.128.0.0", "172.15.255.255", "172.32.0.0", "169.253.255.255",
                        "169.255.0.0", "192.167.255.255", "192.169.0.0", "198.17.255.255",
                        "198.20.0.0", "126.255.255.255", "128.0.0.0", "223.255.255.255",
                        "192.0.1.1", "192.31.196.1"})
    EXPECT_EQ(scope_of(a), address_scope::public_unicast) << a;
  auto c = classify_address(boost::asio::ip::make_address("169.254.169.254"));
  EXPECT_EQ(c.range, "link-local 169.254.0.0/16");
}

TEST(TargetPolicy, IPv6SpecialPurposeRanges) {
  for (const char* a : {"::1", "fe80::1", "febf:ffff::1", "fc00::1", "fd12:3456::1",
                        "fec0::1", "2001:db8::1", "2001::1", "2001:2::1", "100::1",
                        "64:ff9b:1::1", "3fff::1", "5f00::1", "4000::1", "::2", "fe7f:ffff::1"})
    EXPECT_EQ(scope_of(a), address_scope::non_public) << a;
  for (const char* a : {"::", "ff02::1", "ff0e::1"})
    EXPECT_EQ(scope_of(a), address_scope::never) << a;
  for (const char* a : {"2606:4700:4700::1111", "2a00:1450:4001:80b::200e", "2001:4860::8888",
                        "2001:200::1", "3ffe::1"})
    EXPECT_EQ(scope_of(a), address_scope::public_unicast) << a;
}

TEST(TargetPolicy, IPv4EmbeddedInIPv6IsJudgedByTheIPv4Address) {
  // Mapped (what a dual-stack socket connects to), translated, NAT64, 6to4, compatible.
  for (const char* a : {"::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254",
                        "::ffff:0:192.168.0.1", "64:ff9b::10.1.2.3", "64:ff9b::7f00:1",
                        "2002:a9fe:a9fe::1", "2002:7f00:1::", "::127.0.0.1", "::8.8.8.8"})
    EXPECT_EQ(scope_of(a), address_scope::non_public) << a;
  EXPECT_EQ(scope_of("::ffff:0.0.0.0"), address_scope::never);
  EXPECT_EQ(scope_of("::ffff:224.0.0.1"), address_scope::never);
  for (const char* a : {"::ffff:8.8.8.8", "64:ff9b::8.8.8.8", "2002:808:808::1"})
    EXPECT_EQ(scope_of(a), address_scope::public_unicast) << a;
  auto c = classify_address(boost::asio::ip::make_address("::ffff:127.0.0.1"));
  EXPECT_EQ(c.range, "IPv4-mapped loopback 127.0.0.0/8");
}

TEST(TargetPolicy, AllowPrivateOpensNonPublicButNeverNonUnicast) {
  auto a = [](const char* t) { return boost::asio::ip::make_address(t); };
  EXPECT_FALSE(target_address_allowed(a("127.0.0.1"), false));
  EXPECT_TRUE(target_address_allowed(a("127.0.0.1"), true));
  EXPECT_TRUE(target_address_allowed(a("fd00::1"), true));
  EXPECT_FALSE(target_address_allowed(a("0.0.0.0"), true));
  EXPECT_FALSE(target_address_allowed(a("::"), true));
  EXPECT_FALSE(target_address_allowed(a("ff02::1"), true));
  EXPECT_TRUE(target_address_allowed(a("8.8.8.8"), false));
  EXPECT_TRUE(target_address_allowed(a("2606:4700:4700::1111"), false));
}

TEST(TargetPolicy, LiteralHostsAreReadLikeTheResolverReadsThem) {
  auto lit = [](const char* h) {
    auto a = literal_address(h);
    return a ? a->to_string() : std::string("name");
  };
  EXPECT_EQ(lit("127.0.0.1"), "127.0.0.1");
  EXPECT_EQ(lit("127.1"), "127.0.0.1");
  EXPECT_EQ(lit("2130706433"), "127.0.0.1");
  EXPECT_EQ(lit("0x7f.0.0.1"), "127.0.0.1");
  EXPECT_EQ(lit("0177.0.0.1"), "127.0.0.1");
  EXPECT_EQ(lit("0xa9fea9fe"), "169.254.169.254");
  EXPECT_EQ(lit("::ffff:127.0.0.1"), "::ffff:127.0.0.1");
  EXPECT_EQ(lit("fe80::1"), "fe80::1");
  EXPECT_NE(lit("fe80::1%1"), "name");
  EXPECT_EQ(lit("localhost"), "name");
  EXPECT_EQ(lit("hooks.example.com"), "name");
  EXPECT_EQ(lit("1e100.net"), "name");
  EXPECT_EQ(lit("127.0.0.1 x"), "name");
  EXPECT_EQ(lit("cafe"), "name") << "hex-looking labels are names (inet_aton needs 0x)";
}

std::string rule_with(const std::string& url) {
  return "{\"scope\":\"device\",\"scope_id\":\"11111111-1111-4111-8111-111111111111\","
         "\"metric\":\"power_w_avg\",\"window\":\"1m\",\"op\":\">\",\"value\":1,"
         "\"webhook_url\":\"" + url + "\",\"webhook_secret\":\"s\"}";
}

TEST(TargetPolicy, RuleBodiesWithNonPublicLiteralTargetsAreForbidden) {
  for (const char* url :
       {"http://169.254.169.254/latest/meta-data", "http://10.0.0.1/", "http://[::ffff:127.0.0.1]/",
        "http://[fe80::1]:8080/x", "http://127.1:9000/", "http://2130706433/", "https://[::1]/",
        "http://100.64.0.1/", "http://[fd00::1]/", "http://0.0.0.0:80/", "http://[::]/",
        "http://224.0.0.1/", "http://[64:ff9b::a00:1]/", "http://192.168.0.1/",
        "http://172.16.0.1/"}) {
    auto r = parse_rule(rule_with(url), {});
    ASSERT_TRUE(std::holds_alternative<rule_error>(r)) << url;
    auto& e = std::get<rule_error>(r);
    EXPECT_EQ(e.code, "webhook_url_forbidden") << url;
    EXPECT_EQ(e.field, "webhook_url") << url;
  }
  auto meta = std::get<rule_error>(parse_rule(rule_with("http://169.254.169.254/x"), {}));
  EXPECT_NE(meta.message.find("169.254.169.254 (link-local 169.254.0.0/16)"), std::string::npos)
      << meta.message;
  EXPECT_NE(meta.message.find("alerts.allow_private_targets"), std::string::npos);

  rule_limits lab;
  lab.allow_private_targets = true;
  EXPECT_TRUE(std::holds_alternative<alert_rule>(parse_rule(rule_with("http://127.0.0.1:9/"), lab)));
  EXPECT_TRUE(std::holds_alternative<alert_rule>(parse_rule(rule_with("http://[fe80::1]/"), lab)));
  // Never a TCP peer, lab or not.
  EXPECT_EQ(std::get<rule_error>(parse_rule(rule_with("http://0.0.0.0/"), lab)).code,
            "webhook_url_forbidden");
  // Public literals and names pass (names are checked when resolved, at every attempt); an
  // empty allow-list allows any public host.
  EXPECT_TRUE(std::holds_alternative<alert_rule>(parse_rule(rule_with("http://8.8.8.8/"), {})));
  EXPECT_TRUE(std::holds_alternative<alert_rule>(
      parse_rule(rule_with("http://[2606:4700:4700::1111]/"), {})));
  EXPECT_TRUE(std::holds_alternative<alert_rule>(parse_rule(rule_with("http://localhost:9/"), {})));
  // The allow-list names hosts; it does not open private addresses.
  rule_limits listed;
  listed.allowed_hosts = "10.0.0.1";
  EXPECT_EQ(std::get<rule_error>(parse_rule(rule_with("http://10.0.0.1/"), listed)).code,
            "webhook_url_forbidden");
}

TEST(TargetPolicy, DeeplyNestedRuleBodiesAreInvalidJson) {
  std::string objects;
  for (int i = 0; i < 99; ++i)
    objects += "{\"a\":";
  objects += "{}" + std::string(99, '}');
  std::string in_a_field = rule_with("http://8.8.8.8/");
  in_a_field.insert(1, "\"value\":" + std::string(40, '[') + std::string(40, ']') + ",");
  for (const auto& body : {std::string(200'000, '['), objects, in_a_field}) {
    auto r = parse_rule(body, {});
    ASSERT_TRUE(std::holds_alternative<rule_error>(r));
    auto& e = std::get<rule_error>(r);
    EXPECT_EQ(e.code, "invalid_json");
    EXPECT_EQ(e.field, "body");
    EXPECT_NE(e.message.find("nesting deeper than 32"), std::string::npos) << e.message;
  }
}

} // namespace
} // namespace joule::rules
