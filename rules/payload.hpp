#pragma once
// Webhook notifications: the JSON body (built once, when the state change is stored, and
// sent byte for byte on every attempt) and its HMAC-SHA256 signature.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "rules/evaluation.hpp"
#include "rules/rule.hpp"

namespace joule::rules {

/// One outbox row: a firing or resolved notification of one rule.
struct notification {
  std::string alert_id;     // this notification; X-Joule-Alert-Id, stable across retries
  std::string incident_id;  // the firing's alert id, shared by its resolved notification
  std::string rule_id;
  std::string status;       // "firing" | "resolved"
  std::int64_t bucket = 0;  // µs, start of the bucket that caused it
  double observed = 0;      // NaN: no observation (a no_data transition)
  std::string payload;      // the exact body to POST
  std::string webhook_url;
  std::string webhook_secret;
  std::string destination;  // scheme://host:port
  int repeat = 0;           // > 0: the n-th repeat of a still-firing incident
  std::string receiver_id;  // a named receiver: delivered grouped (empty: the rule's webhook)
  std::string scope_id;     // grouping labels
  std::string household_id;
  std::map<std::string, std::string> labels;  // the rule's labels (silence matchers)
};

/// Builds the notification for a transition of `rule` evaluated on bucket `bucket_start`.
/// `fired_at` is the firing time of the incident (for resolved: when it fired); `at` is the
/// evaluation time (µs, database clock). `observed` NaN is rendered null (no data). For
/// silence_sec, `bucket_start` is the scope's last reading and `at` ends the "bucket".
/// `repeat` > 0 marks a repeat notification of a still-firing incident.
notification make_notification(const alert_rule& rule, transition event,
                               const std::string& alert_id, const std::string& incident_id,
                               std::int64_t bucket_start, double observed, std::int64_t fired_at,
                               std::int64_t at, int repeat = 0);

/// One signed POST for a group of a webhook receiver: {"group_key","alerts":[payloads…]}
/// (each alert exactly the body a single notification has).
std::string group_body(const std::string& group_key, const std::vector<std::string>& payloads);

/// The same notifications as Alertmanager's `POST /api/v2/alerts` body: labels alertname (the
/// rule's name, else "joule_<metric>"), rule_id, scope, scope_id, household_id, metric and the
/// rule's labels; annotations with the observed value and threshold; startsAt (when the
/// incident fired) and endsAt once resolved. Of several notifications of one incident the
/// newest wins.
std::string alertmanager_body(const std::vector<std::string>& payloads);

/// "sha256=<hex HMAC-SHA256(secret, "{alert_id}.{timestamp}.{body}")>".
std::string sign(const std::string& secret, const std::string& alert_id,
                 std::int64_t unix_seconds, const std::string& body);

} // namespace joule::rules
