#pragma once
// Joule's operator settings: one typed struct, a table that names and documents every
// field, and loading from defaults < config file < environment < command-line flags.
// Depends on nothing else in the project.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "config/rollups.hpp"

namespace joule::config {

struct settings {
  // --- database
  std::string db_url = "postgresql://joule@127.0.0.1:5432/joule";
  int db_pool_size = 4;
  int db_queue_limit = 2048;
  millis db_statement_timeout{2000};
  millis db_request_deadline{3000};
  millis db_reconnect_backoff_max{5000};
  /// Streaming standby for analytics reads (libpq URI, may list several hosts); empty: every
  /// read on the primary.
  std::string db_read_url;
  /// Longest replay lag at which the standby still serves reads.
  millis db_read_max_lag{2000};
  // --- cache
  std::string redis_url = "redis://127.0.0.1:6379";
  int redis_workers = 2;
  millis redis_timeout{50};
  std::chrono::seconds cache_ttl{60};
  int cache_jitter_min_pct = 10;
  int cache_jitter_max_pct = 20;
  std::chrono::seconds cache_live_ttl{5};
  int cache_breaker_failures = 3;
  millis cache_breaker_open{2000};
  int cache_max_inflight = 512;
  millis cache_local_ttl{1000};
  int cache_local_max_entries = 20000;
  // --- http
  std::string http_listen = "127.0.0.1:8080";
  int http_threads = 1;
  std::int64_t http_body_limit = 1 << 20;
  millis http_request_timeout{5000};
  millis http_idle_timeout{30000};
  int http_json_max_depth = 32;
  std::int64_t http_header_limit = 16 * 1024;
  millis http_header_timeout{10000};
  int http_pipeline_limit = 16;
  int http_max_connections = 10000;
  /// Comma-separated IPs/CIDRs whose X-Forwarded-For is believed; empty: never.
  std::string http_trusted_proxies;
  // --- api
  int api_max_points = 20000;
  int api_top_limit_max = 100;
  bool api_read_raw = false;
  // --- rollups: one policy per entry of rollup_defs() (config/rollups.hpp), keyed by name;
  // settings `refresh.<name>.start_offset|end_offset|schedule_interval`.
  std::map<std::string, refresh_policy> refresh_policies = default_refresh_policies();
  millis refresh_max_batch{std::chrono::hours(1)};
  int refresh_catchup_duty = 50;     // % of wall time a catching-up refresh keeps its connection busy
  int refresh_catchup_parallel = 1;  // rollups catching up at once in this process
  // --- partitions
  millis partition_interval{std::chrono::hours(24)};
  int partitions_ahead = 3;
  int partitions_behind = 7;
  millis partition_check_interval{std::chrono::minutes(10)};
  // --- ingest (POST /telemetry)
  millis ingest_max_future_skew{300000};
  millis ingest_idempotency_ttl{86400000};
  millis ingest_max_age{std::chrono::hours(24 * 7)};
  int ingest_max_pending_rows = 200000;
  int ingest_max_rows_per_commit = 50000;
  int ingest_writers = 2;
  // --- alerts
  bool alerts_enabled = true;
  millis alerts_feed_interval{1000};
  millis alerts_webhook_timeout{5000};
  int alerts_retry_max_attempts = 12;
  millis alerts_retry_initial{1000};
  millis alerts_retry_max{300000};
  std::string alerts_allowed_hosts;  // comma-separated; empty = any public host
  bool alerts_allow_private_targets = false;
  int alerts_delivery_workers = 8;
  // --- live reads (issue 9)
  bool live_enabled = true;
  millis live_interval{1000};
  int live_settled_max_entries = 50000;
  std::int64_t live_settled_max_bytes = std::int64_t(192) << 20;
  std::int64_t live_answer_memo_max_bytes = std::int64_t(32) << 20;  // 0: no memo
  millis alerts_catch_up{15 * 60 * 1000};
  millis alerts_retention{30LL * 24 * 3600 * 1000};
  millis alerts_alertmanager_resend{60 * 1000};
  millis alerts_lease{5000};          // rule ownership between instances (issue 11)
  std::string cluster_instance_id;   // empty: hostname-pid-random, generated at start
  // --- auth (API tokens)
  bool auth_required = true;
  double auth_rate_limit = 1000;   // requests/s per token; 0: unlimited
  double auth_rate_burst = 2000;
  double auth_failure_rate_limit = 5;  // failed authentications/s per client address
  double auth_failure_burst = 20;
  millis auth_refresh_interval{1000};
  int auth_cache_max_entries = 100000;
  // --- logging (live: SIGHUP applies them)
  std::string log_level = "info";    // debug | info | warn | error
  std::string log_format = "text";   // text | json
  bool log_access = true;            // one line per HTTP request
  // --- runtime
  int scheduler_threads = 2;
  millis supervisor_backoff_max{10000};
};

/// The settings a running server uses now: read by whoever needs the current values (the
/// spawn functions of restarted actors, GET /admin/config), replaced by a SIGHUP reload.
class settings_box {
public:
  explicit settings_box(settings s) : s_(std::move(s)) {}
  settings get() const {
    std::lock_guard<std::mutex> g{m_};
    return s_;
  }
  void set(settings s) {
    std::lock_guard<std::mutex> g{m_};
    s_ = std::move(s);
  }

private:
  mutable std::mutex m_;
  settings s_;
};

/// One documented setting: key (`db.url`), env var (`JOULE_DB_URL`), flag (`--db.url`).
struct option {
  std::string key;
  std::string description;
  std::function<std::string(const settings&)> get;
  /// Parses and stores a value; returns an error message or empty on success.
  std::function<std::string(settings&, const std::string&)> set;
  std::string env_name() const;
};

/// Every setting, in documentation order.
const std::vector<option>& options();

/// Result of loading: settings, or an error naming the setting and source.
struct load_result {
  settings values;
  std::string error;      // non-empty: start-up must stop with this message
  std::vector<std::string> positional;
  bool help = false;
};

/// Loads from defaults, then `config_file` (if it exists or was named explicitly), then the
/// environment, then `--key=value` / `--key value` flags. `--config FILE` names the file.
load_result load(const std::vector<std::string>& args,
                 const std::function<const char*(const char*)>& getenv,
                 const std::string& default_config_file);

/// Text for `--help`: every setting with its env var, default and description.
std::string help_text();

/// Parses "250ms", "30s", "5m", "2h", "7d" (a bare number means seconds).
std::optional<millis> parse_duration(const std::string& text);
std::string format_duration(millis d);

/// The keys a running server applies when SIGHUP reloads the config file (README lists them);
/// a change to any other key is logged as needing a restart.
const std::vector<std::string>& live_keys();

/// `key = value` pairs of every setting in documentation order, with secrets redacted: the
/// password of db.url / db.read_url / redis.url (any key ending in "url"; URI or
/// `password=`), and any key naming a secret, password or token.
std::vector<std::pair<std::string, std::string>> redacted(const settings& s);
/// Where the passwords of a libpq URI (user info, ?password=) or key=value string
/// (password=...) are, as (offset, length), in order: the one parser behind `redact` and the
/// DB session's scrubbing of libpq error messages.
std::vector<std::pair<std::size_t, std::size_t>> password_spans(const std::string& url);
/// One value with the redaction of `redacted`.
std::string redact(const std::string& key, const std::string& value);

/// Checks that hold between settings (run by load() and again by the server at start-up);
/// returns an error naming the setting, or empty.
std::string validate(const settings& s);

/// True when `host` (as in http.listen) is a loopback address: 127.0.0.0/8, ::1,
/// ::ffff:127.x.y.z or "localhost".
bool is_loopback_host(const std::string& host);

/// Splits "host:port"; false if malformed.
bool split_host_port(const std::string& text, std::string& host, std::uint16_t& port);

} // namespace joule::config
