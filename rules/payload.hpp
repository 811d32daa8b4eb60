#pragma once
// Webhook notifications: the JSON body (built once, when the state change is stored, and
// sent byte for byte on every attempt) and its HMAC-SHA256 signature.

#include <cstdint>
#include <string>

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

/// "sha256=<hex HMAC-SHA256(secret, "{alert_id}.{timestamp}.{body}")>".
std::string sign(const std::string& secret, const std::string& alert_id,
                 std::int64_t unix_seconds, const std::string& body);

} // namespace joule::rules
