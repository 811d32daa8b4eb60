#pragma once
// Alert receivers: where grouped notifications go (a signed webhook or an Alertmanager), and
// how alerts are grouped on the way (group_by, group_wait_sec, group_interval_sec). Pure
// model, parsing and rendering; SQL lives in rules/receiver_sql.*.

#include <cstdint>
#include <map>
#include <string>
#include <variant>
#include <vector>

#include "rules/rule.hpp"

namespace joule::rules {

enum class receiver_kind : std::uint8_t { webhook, alertmanager };
const char* to_string(receiver_kind k);

struct alert_receiver {
  std::string id;
  std::string name;
  receiver_kind kind = receiver_kind::webhook;
  std::string url;
  std::string secret;                 // webhook HMAC key; never returned
  std::vector<std::string> group_by;  // subset of household_id, rule_id, scope_id (in that order)
  std::int64_t group_wait_sec = 0;
  std::int64_t group_interval_sec = 60;
  std::int64_t created_at = 0;
  std::int64_t updated_at = 0;
};

/// Validates a POST or PUT body (a full definition). `secret` is required for webhooks and
/// refused for alertmanager; the URL passes the same target checks as a rule's webhook_url.
std::variant<alert_receiver, rule_error> parse_receiver(const std::string& body,
                                                         const rule_limits& limits);

std::string render_receiver(const alert_receiver& r);
std::string render_receivers(const std::vector<alert_receiver>& rs);

/// The labels a notification is grouped by.
struct group_labels {
  std::string household_id, rule_id, scope_id;
};
/// "receiver-id" + "{household_id=\"…\",…}" over the receiver's group_by (empty group_by: one
/// group per receiver, as in Alertmanager).
std::string group_key(const std::string& receiver_id, const std::vector<std::string>& group_by,
                      const group_labels& labels);

} // namespace joule::rules
