#include "rules/ownership.hpp"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <random>

namespace joule::rules {

std::uint64_t rendezvous_score(std::string_view instance, std::string_view rule_id) {
  std::uint64_t h = 14695981039346656037ull;
  auto mix = [&h](std::string_view s) {
    for (unsigned char c : s) {
      h ^= c;
      h *= 1099511628211ull;
    }
  };
  mix(instance);
  mix(std::string_view("\0", 1));  // "ab"+"c" and "a"+"bc" must differ
  mix(rule_id);
  // FNV alone clusters on common prefixes; the finaliser spreads every input bit.
  h += 0x9e3779b97f4a7c15ull;
  h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ull;
  h = (h ^ (h >> 27)) * 0x94d049bb133111ebull;
  return h ^ (h >> 31);
}

std::string rendezvous_owner(std::string_view rule_id, const std::vector<std::string>& live) {
  const std::string* best = nullptr;
  std::uint64_t best_score = 0;
  for (auto& inst : live) {
    auto s = rendezvous_score(inst, rule_id);
    if (!best || s > best_score || (s == best_score && inst < *best)) {
      best = &inst;
      best_score = s;
    }
  }
  return best ? *best : std::string{};
}

lease_plan plan_leases(const std::string& me, const std::vector<std::string>& live,
                       const std::vector<std::string>& enabled,
                       const std::unordered_set<std::string>& held) {
  lease_plan out;
  const bool alone = live.size() == 1 && live.front() == me;
  const bool present = std::find(live.begin(), live.end(), me) != live.end();
  std::unordered_set<std::string> wanted;
  if (present) {
    for (auto& id : enabled) {
      if (alone || rendezvous_owner(id, live) == me) {
        wanted.insert(id);
        if (!held.count(id))
          out.acquire.push_back(id);
      }
    }
  }
  for (auto& id : held)
    if (!wanted.count(id))
      out.release.push_back(id);
  std::sort(out.acquire.begin(), out.acquire.end());
  std::sort(out.release.begin(), out.release.end());
  return out;
}

std::vector<std::string> lease_claims(const lease_plan& p, const std::vector<std::string>& refresh,
                                      const std::unordered_set<std::string>& held) {
  std::vector<std::string> out = p.acquire;
  for (auto& id : refresh)
    if (held.count(id) && !std::binary_search(p.release.begin(), p.release.end(), id))
      out.push_back(id);
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

bool may_claim(const std::optional<std::string>& current_owner, bool owner_live,
               const std::string& me) {
  return !current_owner || *current_owner == me || !owner_live;
}

bool lease_valid(std::chrono::steady_clock::time_point last_ok,
                 std::chrono::steady_clock::time_point now, std::chrono::milliseconds lease,
                 std::chrono::milliseconds margin) {
  return now < last_ok + lease - margin;
}

std::chrono::milliseconds heartbeat_interval(std::chrono::milliseconds lease) {
  return std::max(std::chrono::milliseconds(100), lease / 3);
}

std::string generate_instance_id() {
  // Once per process: a manager restarted by the supervisor (or an app restarted in a test)
  // keeps its identity and so its own leases.
  static const std::string id = [] {
    std::array<char, 256> host{};
    if (gethostname(host.data(), host.size() - 1) != 0)
      host[0] = '\0';
    std::string name = host[0] ? host.data() : "joule";
    std::random_device rd;
    static const char* hex = "0123456789abcdef";
    std::string suffix;
    for (int i = 0; i < 8; ++i)
      suffix += hex[rd() % 16];
    return name + "-" + std::to_string(::getpid()) + "-" + suffix;
  }();
  return id;
}

} // namespace joule::rules
