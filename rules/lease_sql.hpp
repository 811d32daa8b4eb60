#pragma once
// SQL of rule ownership (migration 0013): instance heartbeats, rule versions for the
// reconcile, and per-rule leases. Parameterised; runs inside db_jobs on a DB worker thread.

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "rules/evaluation.hpp"
#include "rules/rule.hpp"

namespace pqxx {
class connection_base;
} // namespace pqxx

namespace joule::db {
class session;
} // namespace joule::db

namespace joule::rules {

/// Renews instance `me` (live until the database's now() + `lease_ms`) and returns the ids of
/// all live instances, sorted. `reset`: (re)joins: first drops every lease `me` holds (a fresh
/// start, or after fencing itself: it evaluates nothing, so it must hold nothing). Without
/// `reset` only a live row is renewed: nullopt when `me` expired or left (the caller fences
/// itself and joins again with `reset`). Instances expired an hour ago are forgotten (their
/// leases with them).
std::optional<std::vector<std::string>> heartbeat(db::session& s, const std::string& me,
                                                  std::int64_t lease_ms, bool reset);

/// One rule's version and switch, as the reconcile compares them.
struct rule_version {
  std::string id;
  std::int64_t version = 0;
  bool enabled = false;
};
/// Every rule (`ids` empty), or those among `ids` (absent ones were deleted).
std::vector<rule_version> rule_versions(db::session& s, const std::vector<std::string>& ids,
                                        bool all);

/// Releases `release` (only rows `me` holds) and claims `acquire` (sorted: concurrent
/// claimers lock rows in one order), then loads the rules `me` now holds among `acquire`,
/// with their stored states. A claim succeeds only while `me` is live itself, for an enabled
/// rule whose lease is free, already `me`'s, or held by an instance that is not live.
std::vector<std::pair<alert_rule, eval_state>>
change_leases(db::session& s, const std::string& me, const std::vector<std::string>& release,
              const std::vector<std::string>& acquire);

/// Gives up everything (clean stop): `me` and its leases are deleted, peers take over at once.
void leave(pqxx::connection_base& c, const std::string& me);

} // namespace joule::rules
