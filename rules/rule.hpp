#pragma once
// The alert rule model and its JSON form: parsing and validating a request body, rendering a
// stored rule. Pure functions (no I/O); the domain types never see RapidJSON.

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <rapidjson/document.h>

namespace joule::rules {

enum class scope_kind : std::uint8_t { device, household };
enum class metric_kind : std::uint8_t { power_w_avg, power_w_max, energy_wh_sum, silence_sec };
/// What a threshold rule does with a closed bucket that holds no reading of its metric.
enum class no_data_policy : std::uint8_t {
  keep,      // neither a breach nor a recovery (the state stays as it is)
  resolve,   // a firing alert resolves, a pending one goes back to ok
  alerting,  // counts as a breach
};
enum class compare_op : std::uint8_t { gt, ge, lt, le };

const char* to_string(scope_kind s);
const char* to_string(metric_kind m);
const char* to_string(compare_op o);
const char* to_string(no_data_policy p);
std::optional<no_data_policy> no_data_from(const std::string& s);
/// "1m" or "5m" from a width in µs.
std::string window_name(std::int64_t width_us);

constexpr std::int64_t minute_us = 60'000'000;

/// One stored rule. `id` is empty until the database assigned one.
struct alert_rule {
  std::string id;
  scope_kind scope = scope_kind::device;
  std::string scope_id;                 // lower-case UUID
  metric_kind metric = metric_kind::power_w_avg;
  std::int64_t window_us = minute_us;   // 1 or 5 minutes (silence_sec: unused, stored as 1)
  compare_op op = compare_op::gt;
  double threshold = 0;                 // JSON field "value"
  std::int64_t cooldown_sec = 300;
  int for_buckets = 1;
  std::optional<double> recover_value;  // hysteresis: resolve only past this value
  no_data_policy no_data = no_data_policy::keep;
  /// A still-firing alert is notified again after this long (0: never).
  std::int64_t repeat_interval_sec = 0;
  std::string name;                          // optional; Alertmanager's alertname
  std::map<std::string, std::string> labels;  // optional, matched by silences
  std::string webhook_url;               // a private receiver (when receiver_id is empty)
  std::string webhook_secret;
  std::string receiver_id;               // a named receiver (rules/receiver.hpp), or empty
  std::string household_id;              // derived: the scope's household (read-only)
  bool enabled = true;
  std::int64_t version = 0;             // bumped by every update (orders live changes)
  std::int64_t created_at = 0;          // µs
  std::int64_t updated_at = 0;
};

/// A 400 naming the offending field.
struct rule_error {
  std::string code;     // e.g. invalid_metric
  std::string field;    // e.g. metric
  std::string message;
};

/// How every request body of the alerts API starts: `body` parsed into `doc` (depth-capped)
/// as a JSON object whose member names `known` all accepts; otherwise the error to answer.
std::optional<rule_error> parse_object_body(const std::string& body, int json_max_depth,
                                            const std::function<bool(const std::string&)>& known,
                                            rapidjson::Document& doc);

/// The parts of an http(s) URL the webhook client needs.
struct webhook_target {
  bool tls = false;
  std::string host;
  std::uint16_t port = 0;
  std::string target = "/";  // path and query
  /// Per-destination concurrency key: scheme://host:port.
  std::string destination() const;
};

/// Parses http://host[:port][/path][?query] and https://...; nullopt otherwise (no user info,
/// no fragments, host required).
std::optional<webhook_target> parse_webhook_url(const std::string& url);

/// True when `host` is allowed by the comma-separated list (empty list: every host). Entries
/// match case-insensitively; an entry starting with '.' matches every subdomain. The list
/// names hosts; which addresses may be reached is target_policy's business (a listed name
/// that resolves to a private address is still refused without allow_private_targets).
bool host_allowed(const std::string& host, const std::string& allowed_hosts);

/// What a rule body is checked against (from settings).
struct rule_limits {
  std::string allowed_hosts;           // alerts.allowed_hosts
  bool allow_private_targets = false;  // alerts.allow_private_targets
  int json_max_depth = 32;             // http.json_max_depth
};

/// The write-time check of a webhook target: a literal address outside public unicast space
/// is `webhook_url_forbidden` (unless allow_private_targets), a host missing from the
/// allow-list `webhook_host_not_allowed`. Names are not resolved here: every delivery
/// attempt checks the addresses they resolve to.
std::optional<rule_error> check_webhook_target(const webhook_target& t, const rule_limits& limits);

/// Validates a POST (full rule, defaults for optional fields) or PUT body (also a full rule:
/// PUT replaces the definition). The result has no id, version or timestamps. A body that is
/// not JSON, or nested deeper than `json_max_depth`, is `invalid_json`.
std::variant<alert_rule, rule_error> parse_rule(const std::string& body,
                                                const rule_limits& limits);

/// The stored rule as the API returns it. The secret is never echoed back
/// (`webhook_secret_set` says whether one is configured).
std::string render_rule(const alert_rule& r);
std::string render_rules(const std::vector<alert_rule>& rs);

/// A random (version 4) UUID for alert ids.
std::string random_uuid();

} // namespace joule::rules
