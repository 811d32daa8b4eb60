#pragma once
// Which instance evaluates which alert rule (issue 11, "Owned work"): pure decisions, no I/O.
// Every instance computes the same owner for a rule from the same list of live instances
// (rendezvous hashing: the instance with the highest score for the rule wins), so a join or
// a leave moves only the rules the changed instance wins or held (about 1/N of them). A
// per-rule lease row in PostgreSQL (rules/lease_sql.*) confirms the decision: an instance
// evaluates a rule only while it holds the lease, and takes a lease only when it is free or
// its owner is no longer live.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

namespace joule::rules {

/// Score of `instance` for `rule_id`: a 64-bit hash of both (FNV-1a then a splitmix64
/// finaliser). Fixed by this code, never std::hash: instances built by different compilers
/// or versions must agree.
std::uint64_t rendezvous_score(std::string_view instance, std::string_view rule_id);

/// The live instance that should evaluate `rule_id` (highest score; ties by the smaller id);
/// empty when `live` is empty.
std::string rendezvous_owner(std::string_view rule_id, const std::vector<std::string>& live);

/// What an instance should do with its leases.
struct lease_plan {
  std::vector<std::string> acquire;  // enabled, won by `me`, not held yet (sorted)
  std::vector<std::string> release;  // held, but disabled, deleted or won by another (sorted)
};

/// `enabled`: every enabled rule id; `held`: the leases `me` holds. With `me` the only live
/// instance every enabled rule is acquired without hashing (one instance owns everything).
lease_plan plan_leases(const std::string& me, const std::vector<std::string>& live,
                       const std::vector<std::string>& enabled,
                       const std::unordered_set<std::string>& held);

/// The ids one lease job claims: the plan's acquisitions plus the held rules in `refresh`
/// (their definitions changed: claiming again re-reads them), but never one the plan releases
/// (the job deletes first, then claims: it would take back what it just gave up). Sorted,
/// unique.
std::vector<std::string> lease_claims(const lease_plan& p, const std::vector<std::string>& refresh,
                                      const std::unordered_set<std::string>& held);

/// The claim rule the lease SQL applies: `me` may take a rule whose lease row is absent
/// (released), is its own, or whose owner is no longer live.
bool may_claim(const std::optional<std::string>& current_owner, bool owner_live,
               const std::string& me);

/// Fencing: an instance whose newest successful heartbeat *started* at `last_ok` keeps its
/// leases until `last_ok + lease` on the database clock (the heartbeat wrote expiry = its own
/// now() + lease, and its now() is no earlier). It stops evaluating `margin` before that, so
/// its evaluators are gone before any peer may take over.
bool lease_valid(std::chrono::steady_clock::time_point last_ok,
                 std::chrono::steady_clock::time_point now, std::chrono::milliseconds lease,
                 std::chrono::milliseconds margin);

/// How often an instance renews its heartbeat: three times per lease, so one lost heartbeat
/// never expires it.
std::chrono::milliseconds heartbeat_interval(std::chrono::milliseconds lease);

/// The default instance id: host name, process id and a random suffix, one per process (a
/// restarted manager keeps it; two servers in one process must set cluster.instance_id).
std::string generate_instance_id();

} // namespace joule::rules
