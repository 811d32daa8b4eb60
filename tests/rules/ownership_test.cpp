// Rule ownership decisions (rules/ownership.hpp): rendezvous assignment, lease plans, the
// claim rule and fencing — pure functions, deterministic.

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

#include "rules/ownership.hpp"

namespace joule::rules {
namespace {

std::vector<std::string> rule_ids(int n) {
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) {
    char buf[40];
    std::snprintf(buf, sizeof buf, "00000000-0000-4000-8000-%012d", i);
    out.push_back(buf);
  }
  return out;
}

TEST(Ownership, ScoresArePinnedSoEveryBuildAgrees) {
  // Instances built by other compilers or versions must compute the same owner: the hash is
  // this code's, never std::hash. A change here moves every rule on a rolling upgrade.
  EXPECT_EQ(rendezvous_score("a", "b"), rendezvous_score("a", "b"));
  EXPECT_NE(rendezvous_score("ab", "c"), rendezvous_score("a", "bc"));
  EXPECT_EQ(rendezvous_score("joule-1", "00000000-0000-4000-8000-000000000001"),
            15183663246760769572ull);
}

TEST(Ownership, OwnerDoesNotDependOnTheOrderOfTheList) {
  std::vector<std::string> live{"a", "b", "c"};
  std::vector<std::string> shuffled{"c", "a", "b"};
  for (auto& id : rule_ids(200))
    EXPECT_EQ(rendezvous_owner(id, live), rendezvous_owner(id, shuffled));
  EXPECT_EQ(rendezvous_owner("x", {}), "");
  EXPECT_EQ(rendezvous_owner("x", {"only"}), "only");
}

TEST(Ownership, RulesSpreadEvenlyOverThreeInstances) {
  std::vector<std::string> live{"host1-100-aaaa", "host2-200-bbbb", "host3-300-cccc"};
  std::map<std::string, int> count;
  for (auto& id : rule_ids(3000))
    ++count[rendezvous_owner(id, live)];
  ASSERT_EQ(count.size(), 3u);
  for (auto& [inst, n] : count) {
    EXPECT_GT(n, 850) << inst;
    EXPECT_LT(n, 1150) << inst;
  }
}

TEST(Ownership, AJoinMovesOnlyTheNewcomersShareAndALeaveOnlyTheLeaversRules) {
  std::vector<std::string> three{"a", "b", "c"};
  std::vector<std::string> four{"a", "b", "c", "d"};
  int moved = 0;
  for (auto& id : rule_ids(4000)) {
    auto before = rendezvous_owner(id, three);
    auto after = rendezvous_owner(id, four);
    if (before != after) {
      EXPECT_EQ(after, "d") << id;  // a rule only ever moves to the newcomer
      ++moved;
    }
  }
  EXPECT_GT(moved, 800);   // about a quarter
  EXPECT_LT(moved, 1200);
  std::vector<std::string> two{"a", "c"};
  for (auto& id : rule_ids(2000)) {
    auto before = rendezvous_owner(id, three);
    if (before != "b") {
      EXPECT_EQ(rendezvous_owner(id, two), before) << id;  // survivors keep theirs
    }
  }
}

TEST(Ownership, PlanAloneTakesEverythingEnabled) {
  auto ids = rule_ids(5);
  auto p = plan_leases("me", {"me"}, ids, {});
  EXPECT_EQ(p.acquire, ids);
  EXPECT_TRUE(p.release.empty());
  // Held already: nothing to do; held but no longer enabled: released.
  std::unordered_set<std::string> held(ids.begin(), ids.end());
  held.insert("gone");
  p = plan_leases("me", {"me"}, ids, held);
  EXPECT_TRUE(p.acquire.empty());
  EXPECT_EQ(p.release, std::vector<std::string>{"gone"});
}

TEST(Ownership, PlansOfAllInstancesPartitionTheRules) {
  std::vector<std::string> live{"a", "b", "c"};
  auto ids = rule_ids(300);
  std::set<std::string> seen;
  std::size_t total = 0;
  for (auto& me : live) {
    auto p = plan_leases(me, live, ids, {});
    total += p.acquire.size();
    seen.insert(p.acquire.begin(), p.acquire.end());
    EXPECT_TRUE(std::is_sorted(p.acquire.begin(), p.acquire.end()));
  }
  EXPECT_EQ(total, ids.size());  // no rule twice
  EXPECT_EQ(seen.size(), ids.size());  // none missing
}

TEST(Ownership, AJoinReleasesWhatTheNewcomerWins) {
  auto ids = rule_ids(300);
  auto before = plan_leases("a", {"a", "b"}, ids, {});
  std::unordered_set<std::string> held(before.acquire.begin(), before.acquire.end());
  auto after = plan_leases("a", {"a", "b", "c"}, ids, held);
  EXPECT_TRUE(after.acquire.empty());
  ASSERT_FALSE(after.release.empty());
  for (auto& id : after.release)
    EXPECT_EQ(rendezvous_owner(id, {"a", "b", "c"}), "c");
  // An instance missing from the live list (expired) takes nothing and gives up all.
  auto gone = plan_leases("a", {"b", "c"}, ids, held);
  EXPECT_TRUE(gone.acquire.empty());
  EXPECT_EQ(gone.release.size(), held.size());
}

TEST(Ownership, ALeaseJobNeverClaimsBackWhatItReleases) {
  // "r2" changed (refresh) while a join moved it to the newcomer: the job releases it and
  // must not claim it again (DELETE then INSERT would keep it here, and the newcomer would
  // retry its claim every heartbeat).
  lease_plan p;
  p.acquire = {"r5"};
  p.release = {"r2", "r3"};
  std::unordered_set<std::string> held{"r1", "r2", "r3"};
  auto claims = lease_claims(p, {"r2", "r1", "r1", "r9"}, held);
  EXPECT_EQ(claims, (std::vector<std::string>{"r1", "r5"}));  // r9: not held, r2: released
  EXPECT_TRUE(lease_claims(lease_plan{}, {}, held).empty());
}

TEST(Ownership, ClaimOnlyFreeOwnOrExpiredLeases) {
  EXPECT_TRUE(may_claim(std::nullopt, false, "me"));       // released
  EXPECT_TRUE(may_claim(std::string("me"), true, "me"));   // already ours
  EXPECT_TRUE(may_claim(std::string("old"), false, "me")); // its owner expired
  EXPECT_FALSE(may_claim(std::string("old"), true, "me")); // held by a live instance
}

TEST(Ownership, FencingStopsBeforeTheLeaseCanBeTaken) {
  using namespace std::chrono;
  auto t0 = steady_clock::time_point{} + hours(1);
  EXPECT_TRUE(lease_valid(t0, t0 + milliseconds(3999), milliseconds(5000), milliseconds(1000)));
  EXPECT_FALSE(lease_valid(t0, t0 + milliseconds(4000), milliseconds(5000), milliseconds(1000)));
  EXPECT_EQ(heartbeat_interval(milliseconds(5000)), milliseconds(1666));
  EXPECT_EQ(heartbeat_interval(milliseconds(150)), milliseconds(100));
}

TEST(Ownership, DefaultInstanceIdIsStablePerProcess) {
  auto id = generate_instance_id();
  EXPECT_EQ(id, generate_instance_id());
  EXPECT_NE(id.find('-'), std::string::npos);
}

} // namespace
} // namespace joule::rules
