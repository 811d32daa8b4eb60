#pragma once
// The notifier: delivers webhook notifications from the durable outbox
// (alert_notifications). It claims due rows with a lease (FOR UPDATE SKIP LOCKED), posts them
// through an asynchronous HTTP client, and records each attempt: delivered, retry later
// (network error, timeout, 5xx, 429: exponential backoff with jitter) or failed (other
// statuses, or out of attempts). At most `per_destination` requests run per receiver, so a
// slow or dead receiver only delays its own notifications. A crash loses nothing: the lease
// runs out and the row is claimed again (at-least-once, same alert id).

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "rules/alert_interfaces.hpp"
#include "rules/rule_sql.hpp"
#include "rules/webhook_client.hpp"

namespace joule::rules {

struct notifier_config {
  int workers = 8;          // deliveries in flight at once (alerts.delivery_workers)
  int per_destination = 2;  // deliveries in flight per receiver (scheme://host:port)
  std::chrono::milliseconds poll_interval{500};
  std::chrono::milliseconds webhook_timeout{5000};
  int max_attempts = 12;
  std::chrono::milliseconds retry_initial{1000};
  std::chrono::milliseconds retry_max{300000};
  std::chrono::milliseconds lease{15000};  // > webhook_timeout, with room for the queue
  std::string allowed_hosts;
  bool allow_private_targets = false;  // see target_policy.hpp
  std::chrono::milliseconds job_timeout{3000};
  std::chrono::milliseconds alertmanager_resend{60000};  // alerts.alertmanager_resend
  /// Alerts per grouped POST at most; the rest of a group goes out with the next claim.
  int group_cap = 1000;
  /// Firing incidents per Alertmanager re-post page (one POST per receiver URL and page).
  int am_page_size = 500;
  /// Wall clock (µs since the epoch): now_micros when null; the test coordinator's
  /// simulated time in deterministic tests.
  std::int64_t (*now)() = nullptr;
};

/// What one claim job found (db_done's value).
struct claim_result {
  std::vector<outbox_item> items;
  std::pair<std::int64_t, std::int64_t> depth{0, 0};  // pending rows, oldest due age (µs)
  /// When the next pending row not yet due becomes due (a group flush, a retry).
  std::optional<std::int64_t> next_due;
};

/// The failure class stored for an attempt (what /alerts/events shows): `error` when the
/// attempt got no HTTP answer, otherwise `http_4xx`-style for a non-2xx status, empty for 2xx.
/// Only classes: the receiver's own text never reaches the API.
std::string failure_class(int http_status, const std::string& error);

/// What to do after an attempt (pure, for tests).
struct delivery_decision {
  attempt_record::kind_t kind = attempt_record::delivered;
  std::int64_t retry_in_ms = 0;
};
/// `jitter01` in [0, 1): the delay is drawn from [base/2, base) with base = initial·2^(n-1)
/// capped at retry_max ("equal jitter": spreads retries without ever retrying at once).
delivery_decision decide(int http_status, int attempts, const notifier_config& cfg,
                         double jitter01);

/// The headers of one attempt at Unix time `now_s`.
std::vector<std::pair<std::string, std::string>>
webhook_headers(const outbox_item& item, std::int64_t now_s);

struct notifier_state {
  static inline const char* name = "notifier";
  notifier_config cfg;
  std::function<db_pool_actor()> pool;
  webhook_sender send;
  std::unique_ptr<webhook_client> client;  // owns the I/O thread when `send` is the default
  std::unordered_map<std::string, int> in_flight_by_destination;
  std::unordered_map<std::string, std::deque<outbox_item>> queued_by_destination;
  std::unordered_set<std::string> held;  // alert ids claimed and not yet recorded
  int in_flight = 0;
  bool claiming = false;
  /// The wake-up timer for the next row that becomes due (only the earliest is kept).
  std::optional<std::int64_t> wake_at;
  std::uint64_t wake_timer = 0;
  std::uint64_t claims = 0;  // claim jobs answered
  bool claim_again = false;
  std::uint64_t delivered = 0, retried = 0, failed = 0;
  std::uint64_t resent = 0;  // Alertmanager re-posts of firing alerts
  std::uint64_t am_pass = 0;  // the current re-post pass (older pages are dropped)
  std::string am_after;       // the pass's next page starts after this rule id
  std::int64_t outbox_depth = 0;
};

/// `send` may be empty: the notifier then owns a webhook_client.
notifier_actor::behavior_type notifier(notifier_actor::stateful_pointer<notifier_state> self,
                                       notifier_config cfg, std::function<db_pool_actor()> pool,
                                       webhook_sender send);

} // namespace joule::rules
