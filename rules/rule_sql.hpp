#pragma once
// The alerts feature's SQL: plain C++ over one db::session (runs inside db_jobs on a DB
// worker thread). Always parameterised; timestamps travel as RFC 3339 text and come back as
// µs since the epoch. Throws what libpqxx throws; the DB worker turns that into answers.

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "rules/evaluation.hpp"
#include "rules/payload.hpp"
#include "rules/rule.hpp"

namespace joule::db {
class session;
} // namespace joule::db

namespace joule::rules {

/// Outcome of a rule write: the stored rule, or which id was unknown.
struct rule_write {
  std::optional<alert_rule> stored;
  bool rule_missing = false;   // PUT/DELETE of an unknown rule id
  bool scope_missing = false;  // scope_id not in devices (id or household_id)
  bool forbidden = false;      // the scope lies outside the caller's households
  bool receiver_missing = false;  // receiver_id unknown (or not visible to the caller)
};

// Tenancy: every function below takes the caller's households (sorted UUIDs; empty = all). A
// restricted caller sees only rules scoped inside them (a household in the list, or a device
// registered in one); other rules behave as if they did not exist, and a rule may only be
// created or moved inside them (forbidden otherwise, also for an unregistered device: no
// existence oracle).

/// Inserts a rule and its initial state row in one transaction.
rule_write create_rule(db::session& s, const alert_rule& r,
                       const std::vector<std::string>& households = {});
/// Replaces the definition of rule `id` (bumps version); the evaluation state is kept.
rule_write update_rule(db::session& s, const std::string& id, const alert_rule& r,
                       const std::vector<std::string>& households = {});
/// Deletes the rule and its state (its notifications stay as history); false when unknown.
bool delete_rule(db::session& s, const std::string& id,
                 const std::vector<std::string>& households = {});
std::optional<alert_rule> get_rule(db::session& s, const std::string& id,
                                   const std::vector<std::string>& households = {});
std::vector<alert_rule> list_rules(db::session& s,
                                   const std::vector<std::string>& households = {});

/// Every enabled rule with its persisted state (start-up of the evaluators).
std::vector<std::pair<alert_rule, eval_state>> load_enabled_rules(db::session& s);
/// The same for the enabled rules among `ids` (rules taken over from another instance).
std::vector<std::pair<alert_rule, eval_state>>
load_enabled_rules(db::session& s, const std::vector<std::string>& ids);

/// Result of a state save.
struct save_result {
  bool applied = false;   // false: `seq` did not match; `current` is the stored state
  eval_state current;     // the state now stored (seq included)
};

/// Stores `next` if the stored seq still equals `expected_seq`, inserting `notes` into the
/// outbox in the same transaction (all or nothing).
save_result save_state(db::session& s, const std::string& rule_id, std::int64_t expected_seq,
                       const eval_state& next, const std::vector<notification>& notes);

/// One row of GET /alerts/events.
struct event_row {
  std::string alert_id, incident_id, rule_id, status, delivery, last_error;
  std::int64_t bucket = 0, created_at = 0, next_attempt_at = 0;
  std::optional<std::int64_t> delivered_at;
  std::optional<int> last_status;
  double observed = 0;
  int attempts = 0;
};
/// Newest first; a restricted caller sees only events of rules it can see.
std::vector<event_row> list_events(db::session& s, const std::optional<std::string>& rule_id,
                                   const std::optional<std::int64_t>& since, int limit,
                                   const std::vector<std::string>& households = {});
std::string render_events(const std::vector<event_row>& rows);

/// A claimed delivery: one outbox row (a rule's own webhook), or every due row of one group
/// of a named receiver in one POST.
struct outbox_item {
  std::string alert_id;  // names the POST (X-Joule-Alert-Id): the row's id, or a new group id
  std::string payload, webhook_url, webhook_secret, destination;
  int attempts = 0;  // including this one
  std::vector<std::string> alert_ids;  // the rows this POST delivers
  bool sign = true;                    // false for Alertmanager (its API takes no signature)
};

/// Claims up to `limit` due rows whose destination is not in `busy`, leasing them for
/// `lease_ms` (FOR UPDATE SKIP LOCKED: concurrent claimers never get the same row). The
/// attempt is counted at claim time, so a crash mid-delivery still counts.
/// Grouped rows: at most `group_cap` rows of one group per POST (the oldest; the rest are
/// claimed next); receivers whose destination is in `busy` are left out too.
std::vector<outbox_item> claim_due(db::session& s, const std::vector<std::string>& busy,
                                   int limit, std::int64_t lease_ms, int group_cap = 1000);

/// When the earliest pending row that is not due yet becomes due (µs), if any.
std::optional<std::int64_t> next_due_at(db::session& s);

/// How one attempt ended.
struct attempt_record {
  std::vector<std::string> alert_ids;  // every row of the POST
  enum kind_t : std::uint8_t { delivered, retry, failed } kind = delivered;
  int http_status = 0;         // 0: no response
  std::string error;
  std::int64_t retry_in_ms = 0;  // for retry
  std::string held_key;          // the notifier's id of the POST (not stored)
};
void record_attempt(db::session& s, const attempt_record& a);

/// One firing incident routed to an Alertmanager receiver: what is posted again before
/// Alertmanager's resolve_timeout.
struct am_firing {
  std::string rule_id, url, payload;  // payload: the firing notification's
};
/// The next `limit` such incidents after `after_rule_id` (rule id order; "" = from the
/// start): re-posts go out page by page, so neither the server nor one POST holds all of
/// them at 100,000 rules. Incidents a silence matches now are left out, also when the silence
/// was created after they fired.
std::vector<am_firing> firing_for_alertmanager(db::session& s, const std::string& after_rule_id,
                                               int limit);

enum class redeliver_result : std::uint8_t { queued, missing, not_failed };
/// Puts a failed notification back into the outbox (due now, attempts from 0). Only failed
/// ones: a pending one is on its way, a delivered one arrived. Tenancy as list_events.
redeliver_result redeliver(db::session& s, const std::string& alert_id,
                           const std::vector<std::string>& households);

/// Firing incidents whose latest notification was silenced and that no silence matches any
/// more: each gets one firing notification (same incident, new alert id). Returns how many.
struct release_result {
  int released = 0;
  std::int64_t checked_at = 0;  // database time of this check (the next check's `since`)
  bool ran = false;             // false: nothing could have changed, nothing was read
};
/// `since`: database time of the previous check; only when a silence ended after it (or
/// `full`: a silence was deleted, a rule changed, or the periodic full pass) are the silenced
/// firing alerts read, and only those no silence matches any more are locked and released
/// (at most `limit` per call).
release_result release_silenced(db::session& s, std::optional<std::int64_t> since, bool full,
                                int limit = 1000);

/// Retention: deletes up to `batch` notifications older than `retention_ms` that are not
/// pending, and silences that ended that long ago. Returns the rows deleted.
std::int64_t delete_expired(db::session& s, std::int64_t retention_ms, int batch);

/// Pending notifications (the outbox depth) and the age of the oldest due one (µs).
std::pair<std::int64_t, std::int64_t> outbox_depth(db::session& s);

} // namespace joule::rules
