#pragma once
// The server's route patterns, for the router fuzz target: it links the route table but not
// the features' handlers (those need the whole server). RoutePatterns.FuzzListMatchesServer
// (tests/unit/fuzz_regression_test.cpp) builds the real table and fails when this list is out
// of date.

namespace joule::fuzz {

struct route_pattern {
  const char* method;
  const char* pattern;
  const char* name;
};

inline constexpr route_pattern route_patterns[] = {
    {"GET", "/analytics/households/{id}/energy", "energy"},
    {"GET", "/analytics/devices/{id}/power", "power"},
    {"GET", "/analytics/households/{id}/top-devices", "top_devices"},
    {"POST", "/telemetry", "telemetry"},
    {"GET", "/healthz", "healthz"},
    {"GET", "/readyz", "readyz"},
    {"GET", "/metrics", "metrics"},
    {"GET", "/admin/config", "admin_config"},
    {"GET", "/admin/status", "admin_status"},
    {"GET", "/alerts/rules", "alert_rules"},
    {"POST", "/alerts/rules", "alert_rules"},
    {"GET", "/alerts/rules/{id}", "alert_rule"},
    {"PUT", "/alerts/rules/{id}", "alert_rule"},
    {"DELETE", "/alerts/rules/{id}", "alert_rule"},
    {"GET", "/alerts/events", "alert_events"},
    {"POST", "/alerts/events/{id}/redeliver", "alert_redeliver"},
    {"GET", "/alerts/receivers", "alert_receivers"},
    {"POST", "/alerts/receivers", "alert_receivers"},
    {"GET", "/alerts/receivers/{id}", "alert_receiver"},
    {"PUT", "/alerts/receivers/{id}", "alert_receiver"},
    {"DELETE", "/alerts/receivers/{id}", "alert_receiver"},
    {"GET", "/alerts/silences", "alert_silences"},
    {"POST", "/alerts/silences", "alert_silences"},
    {"GET", "/alerts/silences/{id}", "alert_silence"},
    {"DELETE", "/alerts/silences/{id}", "alert_silence"},
    {"POST", "/admin/tokens", "admin_tokens"},
    {"GET", "/admin/tokens", "admin_tokens"},
    {"DELETE", "/admin/tokens/{id}", "admin_token"},
    {"GET", "/ui", "ui"},
    {"GET", "/ui/{id}", "ui_asset"},
    {"GET", "/openapi.json", "openapi"},
};

} // namespace joule::fuzz
