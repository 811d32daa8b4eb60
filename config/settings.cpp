#include "config/settings.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <sstream>

#include "config/ip_ranges.hpp"

namespace joule::config {
namespace {

std::string trim(const std::string& s) {
  auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos)
    return {};
  auto e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

bool parse_int64(const std::string& text, std::int64_t& out) {
  if (text.empty())
    return false;
  char* end = nullptr;
  errno = 0;
  long long v = std::strtoll(text.c_str(), &end, 10);
  if (errno != 0 || *end != '\0')
    return false;
  out = v;
  return true;
}

// Builders for the option table: each binds a key to one member with bounds.
template <class Int>
option integer_option(std::string key, std::string desc, Int settings::*member, std::int64_t lo,
                      std::int64_t hi, const char* unit) {
  return {std::move(key), std::move(desc),
          [member](const settings& s) { return std::to_string(s.*member); },
          [member, lo, hi, unit](settings& s, const std::string& v) -> std::string {
            std::int64_t n = 0;
            if (!parse_int64(v, n))
              return std::string("expected an integer") + unit + ", got '" + v + "'";
            if (n < lo || n > hi)
              return "must be between " + std::to_string(lo) + " and " + std::to_string(hi);
            s.*member = static_cast<Int>(n);
            return {};
          }};
}

option int_option(std::string key, std::string desc, int settings::*member, int lo, int hi) {
  return integer_option(std::move(key), std::move(desc), member, lo, hi, "");
}

option size_option(std::string key, std::string desc, std::int64_t settings::*member,
                   std::int64_t lo, std::int64_t hi) {
  return integer_option(std::move(key), std::move(desc), member, lo, hi, " (bytes)");
}

option bool_option(std::string key, std::string desc, bool settings::*member) {
  return {std::move(key), std::move(desc),
          [member](const settings& s) { return std::string(s.*member ? "true" : "false"); },
          [member](settings& s, const std::string& v) -> std::string {
            if (v == "true" || v == "1" || v == "yes" || v == "on")
              s.*member = true;
            else if (v == "false" || v == "0" || v == "no" || v == "off")
              s.*member = false;
            else
              return "expected true or false, got '" + v + "'";
            return {};
          }};
}

option double_option(std::string key, std::string desc, double settings::*member, double lo,
                     double hi) {
  return {std::move(key), std::move(desc),
          [member](const settings& s) {
            std::ostringstream out;
            out << s.*member;
            return out.str();
          },
          [member, lo, hi](settings& s, const std::string& v) -> std::string {
            char* end = nullptr;
            errno = 0;
            double n = v.empty() ? 0 : std::strtod(v.c_str(), &end);
            if (v.empty() || errno != 0 || *end != '\0' || n != n)
              return "expected a number, got '" + v + "'";
            if (n < lo || n > hi) {
              std::ostringstream out;
              out << "must be between " << lo << " and " << hi;
              return out.str();
            }
            s.*member = n;
            return {};
          }};
}

option string_option(std::string key, std::string desc, std::string settings::*member,
                     std::function<std::string(const std::string&)> check) {
  return {std::move(key), std::move(desc), [member](const settings& s) { return s.*member; },
          [member, check](settings& s, const std::string& v) -> std::string {
            if (check) {
              auto err = check(v);
              if (!err.empty())
                return err;
            }
            s.*member = v;
            return {};
          }};
}

template <class Access>
option duration_option(std::string key, std::string desc, Access access, millis lo, millis hi) {
  return {std::move(key), std::move(desc),
          [access](const settings& s) {
            return format_duration(std::chrono::duration_cast<millis>(access(const_cast<settings&>(s))));
          },
          [access, lo, hi](settings& s, const std::string& v) -> std::string {
            auto d = parse_duration(v);
            if (!d)
              return "expected a duration such as 500ms, 30s, 5m, 2h or 7d, got '" + v + "'";
            if (*d < lo || *d > hi)
              return "must be between " + format_duration(lo) + " and " + format_duration(hi);
            using target = std::decay_t<decltype(access(s))>;
            access(s) = std::chrono::duration_cast<target>(*d);
            if (std::chrono::duration_cast<millis>(access(s)) != *d)
              return "must be a whole number of " +
                     std::string(std::is_same_v<target, std::chrono::seconds> ? "seconds" : "ms");
            return {};
          }};
}

#define JOULE_FIELD(expr) [](settings& s) -> decltype(auto) { return (s.expr); }

std::string check_listen(const std::string& v) {
  std::string host;
  std::uint16_t port = 0;
  if (!split_host_port(v, host, port))
    return "expected host:port, got '" + v + "'";
  return {};
}

std::string check_db_url(const std::string& v) {
  if (v.empty())
    return "must not be empty";
  return {};
}

std::string check_redis_url(const std::string& v) {
  if (v.empty())
    return {};  // empty disables the cache
  const std::string prefix = "redis://";
  if (v.compare(0, prefix.size(), prefix) != 0)
    return "expected redis://host:port or empty (cache off)";  // the value may hold a password
  std::string host;
  std::uint16_t port = 0;
  auto rest = v.substr(prefix.size());
  if (!rest.empty() && rest.back() == '/')
    rest.pop_back();
  if (rest.find('@') != std::string::npos || !split_host_port(rest, host, port))
    return "expected redis://host:port (no user or password)";
  return {};
}

// The three `refresh.<name>.*` keys of one rollup; `name` comes from rollup_defs().
void add_policy(std::vector<option>& out, const std::string& name) {
  using namespace std::chrono;
  auto day = duration_cast<millis>(hours(24));
  auto field = [name](millis refresh_policy::*f) {
    return [name, f](settings& s) -> millis& { return s.refresh_policies.at(name).*f; };
  };
  out.push_back(duration_option(
      "refresh." + name + ".start_offset",
      "Oldest data the " + name + " policy re-materialises (late data older than this waits "
      "for a manual `joule refresh`)",
      field(&refresh_policy::start_offset), millis(60000), day * 3650));
  out.push_back(duration_option(
      "refresh." + name + ".end_offset",
      "How far behind now the " + name + " watermark stays (newer data is served from raw rows)",
      field(&refresh_policy::end_offset), millis(0), day * 30));
  out.push_back(duration_option("refresh." + name + ".schedule_interval",
                                "How often the " + name + " refresh runs",
                                field(&refresh_policy::schedule_interval), millis(100), day));
}

std::vector<option> build_options() {
  using namespace std::chrono;
  std::vector<option> o;
  auto day = duration_cast<millis>(hours(24));
  o.push_back(string_option("db.url", "PostgreSQL connection (libpq URI or key=value string)",
                            &settings::db_url, check_db_url));
  o.push_back(int_option("db.pool_size", "DB worker actors, one connection each",
                         &settings::db_pool_size, 1, 256));
  o.push_back(int_option("db.queue_limit",
                         "Requests waiting for a DB worker before new ones get 503",
                         &settings::db_queue_limit, 1, 1000000));
  o.push_back(duration_option("db.statement_timeout", "PostgreSQL statement_timeout per query",
                              JOULE_FIELD(db_statement_timeout), millis(10), day));
  o.push_back(duration_option("db.request_deadline",
                              "Longest a request may wait for the DB (queue + query)",
                              JOULE_FIELD(db_request_deadline), millis(10), day));
  o.push_back(duration_option("db.reconnect_backoff_max", "Upper bound of reconnect backoff",
                              JOULE_FIELD(db_reconnect_backoff_max), millis(10), day));
  o.push_back(string_option(
      "db.read_url",
      "Streaming standby for analytics reads (libpq URI, may list several hosts, e.g. with "
      "target_session_attrs=prefer-standby); empty: every read on the primary",
      &settings::db_read_url, nullptr));
  o.push_back(duration_option(
      "db.read_max_lag",
      "Replay lag above which analytics reads leave the standby for the primary (and come back "
      "once it caught up)",
      JOULE_FIELD(db_read_max_lag), millis(100), millis(3600000)));
  o.push_back(string_option("redis.url", "Redis for the answer cache; empty disables the cache",
                            &settings::redis_url, check_redis_url));
  o.push_back(int_option("redis.workers", "Redis connections (one detached actor each)",
                         &settings::redis_workers, 1, 64));
  o.push_back(duration_option("redis.timeout", "Connect and command timeout for Redis",
                              JOULE_FIELD(redis_timeout), millis(1), millis(60000)));
  o.push_back(duration_option("cache.ttl", "TTL of answers over settled buckets",
                              JOULE_FIELD(cache_ttl), millis(1000), day));
  o.push_back(int_option("cache.jitter_min_pct", "Lower bound of the random TTL extension (%)",
                         &settings::cache_jitter_min_pct, 0, 100));
  o.push_back(int_option("cache.jitter_max_pct", "Upper bound of the random TTL extension (%)",
                         &settings::cache_jitter_max_pct, 0, 100));
  o.push_back(duration_option(
      "cache.live_ttl",
      "TTL of answers that include still-changing buckets (keeps the 10 s freshness target)",
      JOULE_FIELD(cache_live_ttl), millis(1000), day));
  o.push_back(int_option("cache.breaker_failures",
                         "Consecutive Redis failures that open the circuit breaker",
                         &settings::cache_breaker_failures, 1, 1000));
  o.push_back(duration_option("cache.breaker_open",
                              "How long the breaker bypasses Redis before probing it again",
                              JOULE_FIELD(cache_breaker_open), millis(10), day));
  o.push_back(int_option("cache.max_inflight",
                         "Redis commands in flight before requests bypass the cache",
                         &settings::cache_max_inflight, 1, 1000000));
  o.push_back(duration_option("cache.local_ttl",
                              "In-process near cache in front of Redis for hot keys (0 disables)",
                              JOULE_FIELD(cache_local_ttl), millis(0), millis(60000)));
  o.push_back(int_option("cache.local_max_entries", "Most answers the near cache holds",
                         &settings::cache_local_max_entries, 1, 10000000));
  o.push_back(string_option("http.listen", "HTTP listen address host:port (port 0 = any free)",
                            &settings::http_listen, check_listen));
  o.push_back(int_option("http.threads", "HTTP I/O threads", &settings::http_threads, 1, 64));
  o.push_back(size_option("http.body_limit", "Largest accepted request body (bytes)",
                          &settings::http_body_limit, 1024, std::int64_t(1) << 30));
  o.push_back(duration_option("http.request_timeout",
                              "Longest a request may take before the server answers 503",
                              JOULE_FIELD(http_request_timeout), millis(10), day));
  o.push_back(duration_option("http.idle_timeout", "Keep-alive connections idle this long close",
                              JOULE_FIELD(http_idle_timeout), millis(100), day));
  o.push_back(int_option("http.json_max_depth",
                         "Deepest nesting of arrays/objects accepted in a JSON request body "
                         "(deeper: 400 invalid_json; a telemetry batch needs 3)",
                         &settings::http_json_max_depth, 3, 1024));
  o.push_back(size_option("http.header_limit",
                          "Largest request head, request line and header fields (bytes); "
                          "larger heads are answered 431",
                          &settings::http_header_limit, 1024, std::int64_t(1) << 20));
  o.push_back(duration_option("http.header_timeout",
                              "A request head must arrive whole within this time of its first "
                              "byte, or the connection closes",
                              JOULE_FIELD(http_header_timeout), millis(10), millis(3600000)));
  o.push_back(int_option("http.pipeline_limit",
                         "Requests read ahead on one connection before it stops being read "
                         "(HTTP/1.1 pipelining; answers keep request order)",
                         &settings::http_pipeline_limit, 1, 1024));
  o.push_back(int_option("http.max_connections",
                         "Open connections beyond which new ones are answered 503 and closed",
                         &settings::http_max_connections, 1, 1000000));
  o.push_back(string_option(
      "http.trusted_proxies",
      "Reverse proxies (comma-separated IPs or CIDR ranges, e.g. 127.0.0.1,10.0.0.0/8) whose "
      "X-Forwarded-For names the client: the client is the rightmost address not in this list "
      "(rate limits per address, access log). Empty: the header is ignored",
      &settings::http_trusted_proxies, [](const std::string& v) -> std::string {
        std::string err;
        if (!ip_ranges::parse(v, err))
          return "expected comma-separated IP addresses or CIDR ranges: " + err;
        return {};
      }));
  o.push_back(int_option("api.max_points", "Most buckets one series answer may contain",
                         &settings::api_max_points, 1, 10000000));
  o.push_back(int_option("api.top_limit_max", "Largest `limit` accepted by top-devices",
                         &settings::api_top_limit_max, 1, 100000));
  o.push_back(bool_option("api.read_raw",
                          "Answer analytics with GROUP BY over raw telemetry (benchmark baseline)",
                          &settings::api_read_raw));
  for (auto& r : rollup_defs())
    add_policy(o, r.name);
  o.push_back(duration_option("refresh.max_batch",
                              "Most raw time one refresh transaction materialises (catch-up is "
                              "split into batches of this size)",
                              JOULE_FIELD(refresh_max_batch), millis(60000), day * 365));
  o.push_back(int_option("refresh.catchup_duty",
                         "Share of wall time (%) a refresh that is catching up (first start on a "
                         "big history, after downtime) keeps its connection busy: after a batch "
                         "of d it waits d * (100 - duty) / duty, so reads keep the rest",
                         &settings::refresh_catchup_duty, 1, 100));
  o.push_back(int_option("refresh.catchup_parallel",
                         "Rollups catching up at once in this process (the others wait for a "
                         "slot; each refresh has its own connection)",
                         &settings::refresh_catchup_parallel, 1, 16));
  o.push_back(duration_option("partition.interval", "Time span of one telemetry partition",
                              JOULE_FIELD(partition_interval), duration_cast<millis>(hours(1)),
                              day * 31));
  o.push_back(int_option("partition.ahead", "Partitions kept created ahead of now",
                         &settings::partitions_ahead, 1, 365));
  o.push_back(int_option("partition.behind", "Partitions created behind now (for backfills)",
                         &settings::partitions_behind, 0, 3650));
  o.push_back(duration_option("partition.check_interval", "How often partitions are checked",
                              JOULE_FIELD(partition_check_interval), millis(1000), day));
  o.push_back(duration_option("ingest.max_future_skew",
                              "Readings further than this in the future are rejected",
                              JOULE_FIELD(ingest_max_future_skew), millis(0), day));
  o.push_back(duration_option("ingest.idempotency_ttl",
                              "How long an Idempotency-Key of POST /telemetry is remembered",
                              JOULE_FIELD(ingest_idempotency_ttl), millis(60000), 7 * day));
  o.push_back(duration_option("ingest.max_age",
                              "Readings older than this are rejected (an old reading makes the "
                              "rollups re-aggregate everything since it)",
                              JOULE_FIELD(ingest_max_age), millis(60000), day * 3650));
  o.push_back(int_option("ingest.max_pending_rows",
                         "Readings waiting for the writer before POST /telemetry answers 503",
                         &settings::ingest_max_pending_rows, 1, 100000000));
  o.push_back(int_option("ingest.max_rows_per_commit",
                         "Most readings one group commit writes", &settings::ingest_max_rows_per_commit,
                         1, 10000000));
  o.push_back(int_option("ingest.writers", "Writer connections (COPY) for POST /telemetry",
                         &settings::ingest_writers, 1, 64));
  o.push_back(bool_option("live.enabled",
                          "Serve the newest buckets from the in-memory live tail and cache settled "
                          "parts by version (false: every uncached answer is one database query)",
                          &settings::live_enabled));
  o.push_back(duration_option("live.interval",
                              "How often the live tail reads the newest buckets of every device "
                              "and household (also feeds the alert evaluators)",
                              JOULE_FIELD(live_interval), millis(100), millis(60000)));
  o.push_back(int_option("live.settled_max_entries",
                         "Most settled answer parts held in memory (one per household and window)",
                         &settings::live_settled_max_entries, 16, 10000000));
  o.push_back(size_option("live.settled_max_bytes",
                          "Most memory settled answer parts may take (their text and keys; half "
                          "for household energy, half for device answers)",
                          &settings::live_settled_max_bytes, std::int64_t(1) << 20,
                          std::int64_t(1) << 40));
  o.push_back(size_option("live.answer_memo_max_bytes",
                          "Most memory whole live answers may take, shared by clients polling the "
                          "same subjects between two live snapshots (0: every poll computes its "
                          "answer)",
                          &settings::live_answer_memo_max_bytes, 0, std::int64_t(1) << 40));
  o.push_back(bool_option("alerts.enabled", "Run alert evaluators and webhook delivery",
                          &settings::alerts_enabled));
  o.push_back(duration_option("alerts.feed_interval",
                              "How often the bucket feed reads the newest buckets for evaluators",
                              JOULE_FIELD(alerts_feed_interval), millis(100), day));
  o.push_back(duration_option("alerts.webhook_timeout", "Timeout of one webhook delivery attempt",
                              JOULE_FIELD(alerts_webhook_timeout), millis(100), millis(600000)));
  o.push_back(int_option("alerts.retry_max_attempts",
                         "Delivery attempts before a notification is marked failed",
                         &settings::alerts_retry_max_attempts, 1, 1000));
  o.push_back(duration_option("alerts.retry_initial", "First retry delay (doubles, with jitter)",
                              JOULE_FIELD(alerts_retry_initial), millis(10), day));
  o.push_back(duration_option("alerts.retry_max", "Longest retry delay",
                              JOULE_FIELD(alerts_retry_max), millis(10), day));
  o.push_back(string_option("alerts.allowed_hosts",
                            "Comma-separated webhook hosts allowed; '.example.com' allows its "
                            "subdomains (empty: any public host)",
                            &settings::alerts_allowed_hosts, nullptr));
  o.push_back(bool_option("alerts.allow_private_targets",
                          "Let webhooks reach loopback, private (RFC 1918, ULA), link-local, "
                          "CGNAT and other non-public addresses (lab set-ups only: otherwise "
                          "any rule author can reach internal services)",
                          &settings::alerts_allow_private_targets));
  o.push_back(int_option("alerts.delivery_workers", "Concurrent webhook deliveries",
                         &settings::alerts_delivery_workers, 1, 1024));
  o.push_back(duration_option("alerts.catch_up",
                              "At start, buckets that closed while the server was down are "
                              "evaluated in order, at most this far back (0: none)",
                              // One query holds every bucket of the span in memory.
                              JOULE_FIELD(alerts_catch_up), millis(0), millis(2 * 3600 * 1000)));
  o.push_back(duration_option("alerts.retention",
                              "Notifications (delivered, failed, silenced) older than this are "
                              "deleted by the cleanup actor",
                              JOULE_FIELD(alerts_retention), millis(60000), day * 3650));
  o.push_back(duration_option("alerts.alertmanager_resend",
                              "How often firing alerts are posted again to Alertmanager "
                              "receivers (below Alertmanager's resolve_timeout, default 5m)",
                              JOULE_FIELD(alerts_alertmanager_resend), millis(1000), day));
  o.push_back(duration_option("alerts.lease",
                              "Rule ownership between instances on one database: an instance "
                              "that misses its heartbeat this long loses its rules to the live "
                              "ones (taken over within 2 x this after a crash)",
                              // Heartbeats run three times per lease; below 1 s they would
                              // cost more than they save.
                              JOULE_FIELD(alerts_lease), millis(1000), millis(5 * 60 * 1000)));
  o.push_back(string_option("cluster.instance_id",
                            "This instance's id among the instances sharing the database "
                            "(empty: host name, process id and a random suffix, new at every "
                            "start); two live instances must never share one",
                            &settings::cluster_instance_id, [](const std::string& v) {
                              if (v.size() > 128)
                                return std::string("at most 128 characters");
                              for (unsigned char c : v)
                                if (c < 0x21 || c > 0x7e)
                                  return std::string("printable ASCII without spaces only");
                              return std::string{};
                            }));
  o.push_back(bool_option("auth.required",
                          "Every route but /healthz and /readyz needs a Bearer token; false is "
                          "refused unless http.listen is a loopback address (then requests "
                          "without a token act as admin)",
                          &settings::auth_required));
  o.push_back(double_option("auth.rate_limit",
                            "Requests per second one token may make on average (0: unlimited); "
                            "beyond it 429 with Retry-After",
                            &settings::auth_rate_limit, 0, 1e7));
  o.push_back(double_option("auth.rate_burst", "Requests one token may make at once",
                            &settings::auth_rate_burst, 1, 1e8));
  o.push_back(double_option("auth.failure_rate_limit",
                            "Failed authentications per second one client address may make "
                            "(0: unlimited); beyond it 429",
                            &settings::auth_failure_rate_limit, 0, 1e6));
  o.push_back(double_option("auth.failure_burst",
                            "Failed authentications one client address may make at once",
                            &settings::auth_failure_burst, 1, 1e6));
  o.push_back(duration_option("auth.refresh_interval",
                              "How often cached tokens are re-checked against the database "
                              "(revocation and expiry take effect within this plus a query)",
                              JOULE_FIELD(auth_refresh_interval), millis(100), millis(2000)));
  o.push_back(int_option("auth.cache_max_entries", "Most verified tokens kept in memory",
                         &settings::auth_cache_max_entries, 16, 10000000));
  o.push_back(string_option("log.level", "Lowest log level written: debug, info, warn or error",
                            &settings::log_level, [](const std::string& v) -> std::string {
                              if (v == "debug" || v == "info" || v == "warn" || v == "error")
                                return {};
                              return "expected debug, info, warn or error, got '" + v + "'";
                            }));
  o.push_back(string_option("log.format",
                            "Log lines as text or json (one JSON object per line)",
                            &settings::log_format, [](const std::string& v) -> std::string {
                              if (v == "text" || v == "json")
                                return {};
                              return "expected text or json, got '" + v + "'";
                            }));
  o.push_back(bool_option("log.access",
                          "Write one access line per HTTP request (method, target, status, "
                          "duration, bytes, request id, route, token id)",
                          &settings::log_access));
  o.push_back(int_option("scheduler.threads", "CAF scheduler worker threads",
                         &settings::scheduler_threads, 1, 64));
  o.push_back(duration_option("supervisor.backoff_max", "Upper bound of actor restart backoff",
                              JOULE_FIELD(supervisor_backoff_max), millis(10), day));
  return o;
}

const option* find_option(const std::string& key) {
  for (auto& o : options())
    if (o.key == key)
      return &o;
  return nullptr;
}

} // namespace

const std::vector<std::string>& live_keys() {
  static const std::vector<std::string> keys = {
      "log.level", "log.format", "log.access",
      // per request (the auth guard's gates)
      "auth.rate_limit", "auth.rate_burst", "auth.failure_rate_limit", "auth.failure_burst",
      // a new DB pool (the old one finishes its jobs first)
      "db.pool_size", "db.queue_limit", "db.request_deadline", "db.statement_timeout",
      // a new cache broker (the old one finishes its lookups first)
      // (not cache.local_*: the near cache shared with the HTTP side outlives brokers)
      "cache.ttl", "cache.live_ttl", "cache.jitter_min_pct", "cache.jitter_max_pct",
      "cache.breaker_failures", "cache.breaker_open", "cache.max_inflight", "redis.workers",
      "redis.timeout"};
  return keys;
}

std::vector<std::pair<std::size_t, std::size_t>> password_spans(const std::string& v) {
  std::vector<std::pair<std::size_t, std::size_t>> out;
  auto scheme = v.find("://");
  if (scheme != std::string::npos) {
    auto start = scheme + 3;
    auto at = v.find('@', start);
    auto slash = v.find_first_of("/?", start);
    if (at != std::string::npos && (slash == std::string::npos || at < slash)) {
      auto colon = v.find(':', start);
      if (colon != std::string::npos && colon < at)
        out.emplace_back(colon + 1, at - colon - 1);
    }
    // A password in the query string (?password=...).
    for (auto q = v.find("password="); q != std::string::npos; q = v.find("password=", q + 1)) {
      auto end = v.find('&', q);
      out.emplace_back(q + 9, (end == std::string::npos ? v.size() : end) - q - 9);
    }
    return out;
  }
  // libpq key=value: password=secret or password='se cret' (the quotes stay outside the span).
  for (auto q = v.find("password"); q != std::string::npos; q = v.find("password", q + 1)) {
    auto eq = v.find_first_not_of(' ', q + 8);
    if (eq == std::string::npos || v[eq] != '=')
      continue;
    auto b = v.find_first_not_of(' ', eq + 1);
    if (b == std::string::npos)
      break;
    auto e = b;
    if (v[b] == '\'') {
      ++b;
      for (e = b; e < v.size() && v[e] != '\''; ++e)
        if (v[e] == '\\')
          ++e;
      e = std::min(v.size(), e);
    } else {
      e = v.find(' ', b);
      if (e == std::string::npos)
        e = v.size();
    }
    out.emplace_back(b, e - b);
  }
  return out;
}

namespace {

// "scheme://user:password@host..." -> "scheme://user:***@host...";
// "... password=secret ..." -> "... password=*** ...".
std::string redact_url(std::string v) {
  auto spans = password_spans(v);
  for (auto it = spans.rbegin(); it != spans.rend(); ++it) {  // back to front: offsets stay valid
    auto [at, length] = *it;
    if (at > 0 && v[at - 1] == '\'' && at + length < v.size() && v[at + length] == '\'') {
      --at;  // a quoted key=value password loses its quotes too: password = ***
      length += 2;
    }
    v.replace(at, length, "***");
  }
  return v;
}

} // namespace

std::string redact(const std::string& key, const std::string& value) {
  if (key.find("secret") != std::string::npos || key.find("password") != std::string::npos ||
      key.find("token") != std::string::npos)
    return value.empty() ? value : "***";
  // Any URL setting (db.url, db.read_url, redis.url, ...): one that ends in "url".
  if (key.size() >= 3 && key.compare(key.size() - 3, 3, "url") == 0)
    return redact_url(value);
  return value;
}

std::vector<std::pair<std::string, std::string>> redacted(const settings& s) {
  std::vector<std::pair<std::string, std::string>> out;
  for (auto& o : options())
    out.emplace_back(o.key, redact(o.key, o.get(s)));
  return out;
}

std::string option::env_name() const {
  std::string out = "JOULE_";
  for (char c : key)
    out += (c == '.') ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

const std::vector<option>& options() {
  static const std::vector<option> table = build_options();
  return table;
}

std::optional<millis> parse_duration(const std::string& text) {
  auto t = trim(text);
  size_t i = 0;
  while (i < t.size() && std::isdigit(static_cast<unsigned char>(t[i])))
    ++i;
  if (i == 0 || i > 12)
    return std::nullopt;
  std::int64_t n = std::stoll(t.substr(0, i));
  auto unit = t.substr(i);
  std::int64_t ms_per_unit = 0;
  if (unit == "ms")
    ms_per_unit = 1;
  else if (unit == "s" || unit.empty())
    ms_per_unit = 1000;
  else if (unit == "m" || unit == "min")
    ms_per_unit = 60'000;
  else if (unit == "h")
    ms_per_unit = 3'600'000;
  else if (unit == "d")
    ms_per_unit = 86'400'000;
  else
    return std::nullopt;
  // Twelve digits of days overflow 64-bit milliseconds ("999999999999d" was signed overflow).
  if (n > std::numeric_limits<std::int64_t>::max() / ms_per_unit)
    return std::nullopt;
  return millis(n * ms_per_unit);
}

std::string format_duration(millis d) {
  auto n = d.count();
  if (n != 0 && n % 86'400'000 == 0)
    return std::to_string(n / 86'400'000) + "d";
  if (n != 0 && n % 3'600'000 == 0)
    return std::to_string(n / 3'600'000) + "h";
  if (n != 0 && n % 60'000 == 0)
    return std::to_string(n / 60'000) + "m";
  if (n % 1000 == 0)
    return std::to_string(n / 1000) + "s";
  return std::to_string(n) + "ms";
}

bool is_loopback_host(const std::string& host) {
  std::string h = host;
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']')
    h = h.substr(1, h.size() - 2);
  std::transform(h.begin(), h.end(), h.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (h == "localhost" || h == "::1" || h == "0:0:0:0:0:0:0:1")
    return true;
  for (const std::string prefix : {"", "::ffff:"}) {
    if (h.compare(0, prefix.size(), prefix) != 0)
      continue;
    // A dotted quad whose first octet is 127.
    auto v4 = h.substr(prefix.size());
    int parts = 0, value = -1, first = -1;
    bool ok = !v4.empty();
    for (std::size_t i = 0; i <= v4.size() && ok; ++i) {
      if (i == v4.size() || v4[i] == '.') {
        ok = value >= 0 && value <= 255;
        if (parts == 0)
          first = value;
        ++parts;
        value = -1;
      } else if (std::isdigit(static_cast<unsigned char>(v4[i]))) {
        value = (value < 0 ? 0 : value * 10) + (v4[i] - '0');
        ok = value <= 255;
      } else {
        ok = false;
      }
    }
    if (ok && parts == 4 && first == 127)
      return true;
  }
  return false;
}

std::string validate(const settings& s) {
  if (!s.auth_required) {
    std::string host;
    std::uint16_t port = 0;
    if (!split_host_port(s.http_listen, host, port) || !is_loopback_host(host))
      return "invalid value for setting auth.required: false is only allowed when http.listen "
             "is a loopback address (127.0.0.0/8, ::1 or localhost), not '" +
             s.http_listen + "'";
  }
  return {};
}

bool split_host_port(const std::string& text, std::string& host, std::uint16_t& port) {
  auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0)
    return false;
  host = text.substr(0, colon);
  std::int64_t p = -1;
  if (!parse_int64(text.substr(colon + 1), p) || p < 0 || p > 65535)
    return false;
  port = static_cast<std::uint16_t>(p);
  return true;
}

load_result load(const std::vector<std::string>& args,
                 const std::function<const char*(const char*)>& getenv,
                 const std::string& default_config_file) {
  load_result r;
  // Flags are collected first so that --config can name the file, but applied last.
  std::vector<std::pair<std::string, std::string>> flags;
  std::string config_file = default_config_file;
  bool config_named = false;
  if (auto* env_file = getenv("JOULE_CONFIG"); env_file && *env_file) {
    config_file = env_file;
    config_named = true;
  }
  for (size_t i = 0; i < args.size(); ++i) {
    const auto& a = args[i];
    if (a == "--help" || a == "-h") {
      r.help = true;
      continue;
    }
    if (a.rfind("--", 0) != 0) {
      r.positional.push_back(a);
      continue;
    }
    auto body = a.substr(2);
    std::string key, value;
    if (auto eq = body.find('='); eq != std::string::npos) {
      key = body.substr(0, eq);
      value = body.substr(eq + 1);
    } else {
      key = body;
      if (i + 1 >= args.size()) {
        r.error = "flag --" + key + " needs a value";
        return r;
      }
      value = args[++i];
    }
    if (key == "config") {
      config_file = value;
      config_named = true;
    } else {
      flags.emplace_back(key, value);
    }
  }
  if (r.help)
    return r;
  auto apply = [&](const std::string& key, const std::string& value,
                   const std::string& source) -> bool {
    auto* opt = find_option(key);
    if (!opt) {
      r.error = "unknown setting '" + key + "' (" + source + "); see --help";
      return false;
    }
    auto err = opt->set(r.values, value);
    if (!err.empty()) {
      r.error = "invalid value for setting " + key + " (" + source + "): " + err;
      return false;
    }
    return true;
  };
  if (!config_file.empty()) {
    std::ifstream in(config_file);
    if (!in && config_named) {
      r.error = "cannot read config file '" + config_file + "'";
      return r;
    }
    std::string line;
    int lineno = 0;
    while (in && std::getline(in, line)) {
      ++lineno;
      auto t = trim(line);
      if (t.empty() || t[0] == '#')
        continue;
      auto eq = t.find('=');
      if (eq == std::string::npos) {
        r.error = config_file + ":" + std::to_string(lineno) + ": expected key = value";
        return r;
      }
      auto value = trim(t.substr(eq + 1));
      if (value.size() >= 2 && value.front() == '"' && value.back() == '"')
        value = value.substr(1, value.size() - 2);
      if (!apply(trim(t.substr(0, eq)), value,
                 config_file + ":" + std::to_string(lineno)))
        return r;
    }
  }
  for (auto& o : options()) {
    auto env = o.env_name();
    if (const char* v = getenv(env.c_str()))
      if (!apply(o.key, v, "environment " + env))
        return r;
  }
  for (auto& [k, v] : flags)
    if (!apply(k, v, "flag --" + k))
      return r;
  if (r.values.cache_jitter_min_pct > r.values.cache_jitter_max_pct) {
    r.error = "invalid value for setting cache.jitter_min_pct: must not exceed cache.jitter_max_pct";
    return r;
  }
  if (auto err = validate(r.values); !err.empty()) {
    r.error = err;
    return r;
  }
  for (auto& [name, p] : r.values.refresh_policies) {
    if (p.start_offset <= p.end_offset) {
      r.error = "invalid value for setting refresh." + name +
                ".start_offset: must be larger than end_offset";
      return r;
    }
  }
  return r;
}

std::string help_text() {
  std::ostringstream out;
  settings defaults;
  out << "Settings (config file `key = value`, environment variable, or --key=value flag;\n"
         "flags override the environment, which overrides the file):\n\n";
  for (auto& o : options()) {
    out << "  --" << o.key << "  (" << o.env_name() << ", default: "
        << (o.get(defaults).empty() ? "\"\"" : o.get(defaults)) << ")\n      " << o.description
        << "\n";
  }
  return out.str();
}

} // namespace joule::config
