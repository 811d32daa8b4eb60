#include "rules/rule_sql.hpp"

#include "http/json_fields.hpp"
#include "rules/alert_metrics.hpp"

#include <algorithm>
#include <cmath>
#include <map>

#include <pqxx/pqxx>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "core/timefmt.hpp"
#include "db/session.hpp"
#include "rules/receiver.hpp"
#include "rules/timing.hpp"

#include <tuple>

namespace joule::rules {
namespace {

// Always read through the alias r (alert_rules AS r), so joins stay unambiguous.
const char* rule_columns =
    "r.id::text, r.scope, r.scope_id::text, r.metric, r.window_minutes, r.op, r.threshold, "
    "r.recover_value, r.cooldown_sec, r.for_buckets, r.webhook_url, r.webhook_secret, "
    "r.enabled, r.version, (extract(epoch from r.created_at) * 1000000)::bigint, "
    "(extract(epoch from r.updated_at) * 1000000)::bigint, r.no_data, r.repeat_interval_sec, "
    "COALESCE(r.name, ''), r.labels::text, COALESCE(r.receiver_id::text, ''), "
    "COALESCE(CASE WHEN r.scope = 'household' THEN r.scope_id END, "
    "         (SELECT d.household_id FROM devices d WHERE d.id = r.scope_id))::text";
constexpr int rule_column_count = 22;

const char* state_columns =
    "s.phase, s.breaches, (extract(epoch from s.last_bucket) * 1000000)::bigint, "
    "(extract(epoch from s.cooldown_until) * 1000000)::bigint, s.incident_id::text, "
    "(extract(epoch from s.fired_at) * 1000000)::bigint, s.seq, "
    "(extract(epoch from COALESCE(s.last_notified_at, s.fired_at)) * 1000000)::bigint, "
    "s.repeats";

// Labels are stored as a jsonb object of strings (validated on the way in).
std::map<std::string, std::string> labels_from(const std::string& text) {
  std::map<std::string, std::string> out;
  rapidjson::Document d;
  d.Parse(text.c_str());
  if (d.HasParseError() || !d.IsObject())
    return out;
  for (auto m = d.MemberBegin(); m != d.MemberEnd(); ++m)
    if (m->value.IsString())
      out[m->name.GetString()] = m->value.GetString();
  return out;
}

std::string labels_json(const std::map<std::string, std::string>& labels) {
  rapidjson::StringBuffer buf;
  http::json::writer w{buf};
  w.StartObject();
  for (auto& [k, v] : labels)
    http::json::field(w, k.c_str(), v);
  w.EndObject();
  return buf.GetString();
}

alert_rule rule_from(const pqxx::row& row, int c = 0) {
  alert_rule r;
  r.id = row[c + 0].as<std::string>();
  r.scope = row[c + 1].as<std::string>() == "device" ? scope_kind::device : scope_kind::household;
  r.scope_id = row[c + 2].as<std::string>();
  auto m = row[c + 3].as<std::string>();
  auto* def = find_metric(m);
  r.metric = def ? def->kind : metric_kind::power_w_avg;
  r.window_us = row[c + 4].as<std::int64_t>() * minute_us;
  auto op = row[c + 5].as<std::string>();
  r.op = op == ">=" ? compare_op::ge : op == "<" ? compare_op::lt : op == "<=" ? compare_op::le
                                                                               : compare_op::gt;
  r.threshold = row[c + 6].as<double>();
  if (!row[c + 7].is_null())
    r.recover_value = row[c + 7].as<double>();
  r.cooldown_sec = row[c + 8].as<std::int64_t>();
  r.for_buckets = row[c + 9].as<int>();
  r.webhook_url = row[c + 10].as<std::string>();
  r.webhook_secret = row[c + 11].as<std::string>();
  r.enabled = row[c + 12].as<bool>();
  r.version = row[c + 13].as<std::int64_t>();
  r.created_at = row[c + 14].as<std::int64_t>();
  r.updated_at = row[c + 15].as<std::int64_t>();
  r.no_data = no_data_from(row[c + 16].as<std::string>()).value_or(no_data_policy::keep);
  r.repeat_interval_sec = row[c + 17].as<std::int64_t>();
  r.name = row[c + 18].as<std::string>();
  r.labels = labels_from(row[c + 19].as<std::string>());
  r.receiver_id = row[c + 20].as<std::string>();
  if (!row[c + 21].is_null())
    r.household_id = row[c + 21].as<std::string>();
  return r;
}

eval_state state_from(const pqxx::row& row, int c) {
  eval_state s;
  s.current = phase_from(row[c].as<std::string>()).value_or(phase::ok);
  s.breaches = row[c + 1].as<int>();
  if (!row[c + 2].is_null())
    s.last_bucket = row[c + 2].as<std::int64_t>();
  if (!row[c + 3].is_null())
    s.cooldown_until = row[c + 3].as<std::int64_t>();
  if (!row[c + 4].is_null())
    s.incident_id = row[c + 4].as<std::string>();
  if (!row[c + 5].is_null())
    s.fired_at = row[c + 5].as<std::int64_t>();
  s.seq = row[c + 6].as<std::int64_t>();
  if (!row[c + 7].is_null())
    s.last_notified_at = row[c + 7].as<std::int64_t>();
  s.repeats = row[c + 8].as<int>();
  return s;
}

// Optional values travel as text; '' is NULL (libpqxx 6 binds a fixed parameter list).
std::string opt_double(const std::optional<double>& v) {
  if (!v)
    return {};
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", *v);
  return buf;
}
std::string opt_time(const std::optional<std::int64_t>& t) {
  return t ? format_rfc3339(*t) : std::string{};
}

// '{a,b}' for `$n::uuid[]` (validated UUIDs).
std::string uuid_array(const std::vector<std::string>& ids) {
  std::string out = "{";
  for (std::size_t i = 0; i < ids.size(); ++i)
    out += (i ? "," : "") + ids[i];
  return out + "}";
}

// Rule r (alias) is visible to a caller with households `param` (an uuid[] parameter).
std::string visible(const std::string& param) {
  return "(cardinality(" + param + "::uuid[]) = 0 OR (r.scope = 'household' AND r.scope_id = ANY(" +
         param + "::uuid[])) OR (r.scope = 'device' AND EXISTS (SELECT 1 FROM devices d WHERE "
         "d.id = r.scope_id AND d.household_id = ANY(" + param + "::uuid[]))))";
}

// A restricted caller may place a rule only inside its households.
bool scope_allowed(pqxx::work& tx, const alert_rule& r, const std::vector<std::string>& households) {
  if (households.empty())
    return true;
  if (r.scope == scope_kind::household)
    return std::binary_search(households.begin(), households.end(), r.scope_id);
  return !tx.exec_params("SELECT 1 FROM devices WHERE id = $1::uuid AND household_id = ANY($2::uuid[])",
                         r.scope_id, uuid_array(households))
              .empty();
}

// A rule may name only a receiver its caller can see (receiver_sql.cpp has the same rule).
bool receiver_usable(pqxx::work& tx, const alert_rule& r,
                     const std::vector<std::string>& households) {
  if (r.receiver_id.empty())
    return true;
  return !tx.exec_params("SELECT 1 FROM alert_receivers WHERE id = $1::uuid AND "
                         "(cardinality($2::uuid[]) = 0 OR (cardinality(owner_households) > 0 "
                         "AND owner_households <@ $2::uuid[]))",
                         r.receiver_id, uuid_array(households))
              .empty();
}

bool scope_exists(pqxx::work& tx, const alert_rule& r) {
  const char* sql = r.scope == scope_kind::device
                        ? "SELECT 1 FROM devices WHERE id = $1::uuid"
                        : "SELECT 1 FROM devices WHERE household_id = $1::uuid LIMIT 1";
  return !tx.exec_params(sql, r.scope_id).empty();
}

} // namespace

rule_write create_rule(db::session& s, const alert_rule& r,
                       const std::vector<std::string>& households) {
  rule_write out;
  pqxx::work tx{s.conn()};
  if (!scope_allowed(tx, r, households)) {
    out.forbidden = true;
    return out;
  }
  if (!scope_exists(tx, r)) {
    out.scope_missing = true;
    return out;
  }
  if (!receiver_usable(tx, r, households)) {
    out.receiver_missing = true;
    return out;
  }
  auto res = tx.exec_params(
      std::string("INSERT INTO alert_rules AS r (scope, scope_id, metric, window_minutes, op, "
                  "threshold, recover_value, cooldown_sec, for_buckets, webhook_url, "
                  "webhook_secret, enabled, no_data, repeat_interval_sec, name, labels, "
                  "receiver_id) VALUES ($1, $2::uuid, $3, $4::int, $5, "
                  "$6::double precision, NULLIF($7, '')::double precision, $8::int, $9::int, "
                  "$10, $11, $12::boolean, $13, $14::int, NULLIF($15, ''), $16::jsonb, "
                  "NULLIF($17, '')::uuid) RETURNING ") + rule_columns,
      to_string(r.scope), r.scope_id, to_string(r.metric), r.window_us / minute_us,
      to_string(r.op), r.threshold, opt_double(r.recover_value), r.cooldown_sec, r.for_buckets,
      r.webhook_url, r.webhook_secret, r.enabled, to_string(r.no_data), r.repeat_interval_sec,
      r.name, labels_json(r.labels), r.receiver_id);
  out.stored = rule_from(res[0]);
  tx.exec_params("INSERT INTO alert_rule_state (rule_id) VALUES ($1::uuid)", out.stored->id);
  tx.commit();
  return out;
}

rule_write update_rule(db::session& s, const std::string& id, const alert_rule& r,
                       const std::vector<std::string>& households) {
  rule_write out;
  pqxx::work tx{s.conn()};
  if (tx.exec_params("SELECT 1 FROM alert_rules r WHERE r.id = $1::uuid AND " + visible("$2") +
                         " FOR UPDATE",
                     id, uuid_array(households))
          .empty()) {
    out.rule_missing = true;
    return out;
  }
  if (!scope_allowed(tx, r, households)) {
    out.forbidden = true;
    return out;
  }
  if (!scope_exists(tx, r)) {
    out.scope_missing = true;
    return out;
  }
  if (!receiver_usable(tx, r, households)) {
    out.receiver_missing = true;
    return out;
  }
  auto res = tx.exec_params(
      std::string("UPDATE alert_rules AS r SET scope = $2, scope_id = $3::uuid, metric = $4, "
                  "window_minutes = $5::int, op = $6, threshold = $7::double precision, "
                  "recover_value = NULLIF($8, '')::double precision, cooldown_sec = $9::int, "
                  "for_buckets = $10::int, webhook_url = $11, webhook_secret = $12, "
                  "enabled = $13::boolean, no_data = $14, repeat_interval_sec = $15::int, "
                  "name = NULLIF($16, ''), labels = $17::jsonb, "
                  "receiver_id = NULLIF($18, '')::uuid, version = version + 1, "
                  "updated_at = now() WHERE r.id = $1::uuid RETURNING ") + rule_columns,
      id, to_string(r.scope), r.scope_id, to_string(r.metric), r.window_us / minute_us,
      to_string(r.op), r.threshold, opt_double(r.recover_value), r.cooldown_sec, r.for_buckets,
      r.webhook_url, r.webhook_secret, r.enabled, to_string(r.no_data), r.repeat_interval_sec,
      r.name, labels_json(r.labels), r.receiver_id);
  out.stored = rule_from(res[0]);
  // Secret rotation: notifications still waiting for the rule's own webhook are signed with
  // the new secret (a receiver's secret is read at every claim anyway).
  if (r.receiver_id.empty())
    tx.exec_params("UPDATE alert_notifications SET webhook_secret = $2 WHERE rule_id = $1::uuid "
                   "AND delivery = 'pending' AND receiver_id IS NULL AND webhook_url = $3",
                   id, r.webhook_secret, r.webhook_url);
  tx.commit();
  return out;
}

bool delete_rule(db::session& s, const std::string& id, const std::vector<std::string>& households) {
  pqxx::work tx{s.conn()};
  auto res = tx.exec_params("DELETE FROM alert_rules r WHERE r.id = $1::uuid AND " +
                                visible("$2") + " RETURNING 1",
                            id, uuid_array(households));
  tx.commit();
  return !res.empty();
}

std::optional<alert_rule> get_rule(db::session& s, const std::string& id,
                                   const std::vector<std::string>& households) {
  pqxx::nontransaction q{s.conn()};
  auto res = q.exec_params(std::string("SELECT ") + rule_columns +
                               " FROM alert_rules r WHERE r.id = $1::uuid AND " + visible("$2"),
                           id, uuid_array(households));
  if (res.empty())
    return std::nullopt;
  return rule_from(res[0]);
}

std::vector<alert_rule> list_rules(db::session& s, const std::vector<std::string>& households) {
  pqxx::nontransaction q{s.conn()};
  std::vector<alert_rule> out;
  for (auto row : q.exec_params(std::string("SELECT ") + rule_columns +
                                    " FROM alert_rules r WHERE " + visible("$1") +
                                    " ORDER BY r.created_at, r.id",
                                uuid_array(households)))
    out.push_back(rule_from(row));
  return out;
}

std::vector<std::pair<alert_rule, eval_state>> load_enabled_rules(db::session& s) {
  pqxx::nontransaction q{s.conn()};
  std::vector<std::pair<alert_rule, eval_state>> out;
  // A rule without a state row (should not happen) is loaded with the initial state.
  auto res = q.exec(std::string("SELECT ") + rule_columns + ", COALESCE(s.phase, 'ok'), "
                    "COALESCE(s.breaches, 0), (extract(epoch from s.last_bucket) * 1000000)::bigint, "
                    "(extract(epoch from s.cooldown_until) * 1000000)::bigint, s.incident_id::text, "
                    "(extract(epoch from s.fired_at) * 1000000)::bigint, COALESCE(s.seq, 0), "
                    "(extract(epoch from COALESCE(s.last_notified_at, s.fired_at)) * 1000000)"
                    "::bigint, COALESCE(s.repeats, 0) "
                    "FROM alert_rules r LEFT JOIN alert_rule_state s ON s.rule_id = r.id "
                    "WHERE r.enabled");
  out.reserve(res.size());
  for (auto row : res)
    out.emplace_back(rule_from(row), state_from(row, rule_column_count));
  return out;
}

std::vector<std::pair<alert_rule, eval_state>>
load_enabled_rules(db::session& s, const std::vector<std::string>& ids) {
  pqxx::nontransaction q{s.conn()};
  std::vector<std::pair<alert_rule, eval_state>> out;
  if (ids.empty())
    return out;
  // A join with the unnested ids, not "= ANY": a hand-over may name 100,000 rules.
  auto res = q.exec_params(std::string("SELECT ") + rule_columns + ", COALESCE(s.phase, 'ok'), "
                           "COALESCE(s.breaches, 0), (extract(epoch from s.last_bucket) * 1000000)::bigint, "
                           "(extract(epoch from s.cooldown_until) * 1000000)::bigint, s.incident_id::text, "
                           "(extract(epoch from s.fired_at) * 1000000)::bigint, COALESCE(s.seq, 0), "
                           "(extract(epoch from COALESCE(s.last_notified_at, s.fired_at)) * 1000000)"
                           "::bigint, COALESCE(s.repeats, 0) "
                           "FROM unnest($1::uuid[]) AS k(id) JOIN alert_rules r ON r.id = k.id "
                           "LEFT JOIN alert_rule_state s ON s.rule_id = r.id WHERE r.enabled",
                           uuid_array(ids));
  out.reserve(res.size());
  for (auto row : res)
    out.emplace_back(rule_from(row), state_from(row, rule_column_count));
  return out;
}

namespace {

// The labels silences match: rule_id, scope_id, household_id and the rule's own labels.
std::string silence_labels(const notification& n) {
  auto all = n.labels;
  all["rule_id"] = n.rule_id;
  all["scope_id"] = n.scope_id;
  if (!n.household_id.empty())
    all["household_id"] = n.household_id;
  return labels_json(all);
}

bool is_silenced(pqxx::work& tx, const notification& n) {
  return !tx.exec_params("SELECT 1 FROM alert_silences WHERE starts_at <= now() AND "
                         "ends_at > now() AND matchers <@ $1::jsonb LIMIT 1",
                         silence_labels(n))
              .empty();
}

// Inserts notifications into the outbox: silenced ones as history, grouped ones with their
// group's flush time. Returns whether the last firing notification was silenced (nullopt:
// there was none).
std::optional<bool> insert_notes(pqxx::work& tx, const std::vector<notification>& notes) {
  std::optional<bool> firing_silenced;
  struct grouping {
    std::vector<std::string> group_by;
    std::int64_t wait = 0, interval = 0;
  };
  std::map<std::string, grouping> receivers;
  for (auto& n : notes) {
    std::string key, flush_at;
    const bool silenced = is_silenced(tx, n);
    if (n.status == "firing")
      firing_silenced = silenced;
    if (!n.receiver_id.empty()) {
      auto it = receivers.find(n.receiver_id);
      if (it == receivers.end()) {
        grouping g;
        auto rc = tx.exec_params("SELECT array_to_string(group_by, ','), group_wait_sec, "
                                 "group_interval_sec FROM alert_receivers WHERE id = $1::uuid",
                                 n.receiver_id);
        if (!rc.empty()) {
          auto by = rc[0][0].as<std::string>();
          for (std::size_t i = 0; i < by.size();) {
            auto j = by.find(',', i);
            if (j == std::string::npos)
              j = by.size();
            g.group_by.push_back(by.substr(i, j - i));
            i = j + 1;
          }
          g.wait = rc[0][1].as<std::int64_t>();
          g.interval = rc[0][2].as<std::int64_t>();
        }
        it = receivers.emplace(n.receiver_id, g).first;
      }
      key = group_key(n.receiver_id, it->second.group_by,
                      group_labels{n.household_id, n.rule_id, n.scope_id});
      if (!silenced) {
        // Join the group's scheduled flush; otherwise wait group_interval after its last
        // flush, or group_wait for a group that is new (or quiet for longer than that).
        // The decision is group_flush_at (timing.hpp, pure); the group row is locked
        // meanwhile, so concurrent savers of one group agree on one flush.
        tx.exec_params("INSERT INTO alert_groups (receiver_id, group_key) VALUES ($1::uuid, $2) "
                       "ON CONFLICT (receiver_id, group_key) DO NOTHING",
                       n.receiver_id, key);
        auto g = tx.exec_params(
            "SELECT (extract(epoch from flush_at) * 1000000)::bigint, "
            "(extract(epoch from last_flush_at) * 1000000)::bigint, "
            "(extract(epoch from now()) * 1000000)::bigint FROM alert_groups "
            "WHERE receiver_id = $1::uuid AND group_key = $2 FOR UPDATE",
            n.receiver_id, key);
        group_times times;
        if (!g[0][0].is_null())
          times.flush_at = g[0][0].as<std::int64_t>();
        if (!g[0][1].is_null())
          times.last_flush_at = g[0][1].as<std::int64_t>();
        auto at = group_flush_at(times, g[0][2].as<std::int64_t>(),
                                 it->second.wait * micros_per_second,
                                 it->second.interval * micros_per_second);
        flush_at = format_rfc3339(at);
        tx.exec_params("UPDATE alert_groups SET flush_at = $3::timestamptz "
                       "WHERE receiver_id = $1::uuid AND group_key = $2",
                       n.receiver_id, key, flush_at);
      }
    }
    tx.exec_params(
        "INSERT INTO alert_notifications (alert_id, incident_id, rule_id, status, bucket, "
        "observed, payload, webhook_url, webhook_secret, destination, receiver_id, group_key, "
        "next_attempt_at, delivery) VALUES ($1::uuid, "
        "$2::uuid, $3::uuid, $4, $5::timestamptz, $6::double precision, $7, $8, $9, $10, "
        "NULLIF($11, '')::uuid, NULLIF($12, ''), COALESCE(NULLIF($13, '')::timestamptz, now()), "
        "$14)",
        n.alert_id, n.incident_id, n.rule_id, n.status, format_rfc3339(n.bucket), n.observed,
        n.payload, n.webhook_url, n.webhook_secret, n.destination, n.receiver_id, key, flush_at,
        silenced ? "silenced" : "pending");
  }
  return firing_silenced;
}

} // namespace

save_result save_state(db::session& s, const std::string& rule_id, std::int64_t expected_seq,
                       const eval_state& next, const std::vector<notification>& notes) {
  save_result out;
  pqxx::work tx{s.conn()};
  auto res = tx.exec_params(
      "UPDATE alert_rule_state SET phase = $3, breaches = $4::int, "
      "last_bucket = NULLIF($5, '')::timestamptz, cooldown_until = NULLIF($6, '')::timestamptz, "
      "incident_id = NULLIF($7, '')::uuid, fired_at = NULLIF($8, '')::timestamptz, "
      "last_notified_at = NULLIF($9, '')::timestamptz, repeats = $10::int, "
      "seq = seq + 1, updated_at = now() WHERE rule_id = $1::uuid AND seq = $2::bigint "
      "RETURNING seq",
      rule_id, expected_seq, to_string(next.current), next.breaches, opt_time(next.last_bucket),
      next.cooldown_until ? format_rfc3339(next.cooldown_until) : std::string{},
      next.incident_id, next.fired_at ? format_rfc3339(next.fired_at) : std::string{},
      next.last_notified_at ? format_rfc3339(next.last_notified_at) : std::string{},
      next.repeats);
  if (res.empty()) {
    // Someone else moved the state (another instance, or our own save that timed out but
    // committed): report what is stored so the evaluator continues from there.
    auto cur = tx.exec_params(std::string("SELECT ") + state_columns +
                                  " FROM alert_rule_state s WHERE s.rule_id = $1::uuid",
                              rule_id);
    if (!cur.empty())
      out.current = state_from(cur[0], 0);
    return out;  // rolls back: nothing written
  }
  auto firing_silenced = insert_notes(tx, notes);
  // Remember a silenced firing of the open incident, so the end of the silence notifies it.
  if (next.current != phase::firing || firing_silenced)
    tx.exec_params("UPDATE alert_rule_state SET silenced_pending = $2::boolean "
                   "WHERE rule_id = $1::uuid",
                   rule_id, next.current == phase::firing && *firing_silenced);
  tx.commit();
  out.applied = true;
  out.current = next;
  out.current.seq = res[0][0].as<std::int64_t>();
  return out;
}

std::vector<event_row> list_events(db::session& s, const std::optional<std::string>& rule_id,
                                   const std::optional<std::int64_t>& since, int limit,
                                   const std::vector<std::string>& households) {
  pqxx::nontransaction q{s.conn()};
  auto res = q.exec_params(
      "SELECT alert_id::text, incident_id::text, rule_id::text, status, delivery, "
      "COALESCE(last_error, ''), (extract(epoch from bucket) * 1000000)::bigint, "
      "(extract(epoch from created_at) * 1000000)::bigint, "
      "(extract(epoch from next_attempt_at) * 1000000)::bigint, "
      "(extract(epoch from delivered_at) * 1000000)::bigint, last_status, observed, attempts "
      "FROM alert_notifications WHERE ($1 = '' OR rule_id = NULLIF($1, '')::uuid) "
      "AND ($2 = '' OR created_at >= NULLIF($2, '')::timestamptz) "
      "AND (cardinality($4::uuid[]) = 0 OR rule_id IN (SELECT r.id FROM alert_rules r WHERE " +
          visible("$4") + ")) "
      "ORDER BY created_at DESC, alert_id LIMIT $3::int",
      rule_id.value_or(""), since ? format_rfc3339(*since) : std::string{}, limit,
      uuid_array(households));
  std::vector<event_row> out;
  for (auto row : res) {
    event_row e;
    e.alert_id = row[0].as<std::string>();
    e.incident_id = row[1].as<std::string>();
    e.rule_id = row[2].as<std::string>();
    e.status = row[3].as<std::string>();
    e.delivery = row[4].as<std::string>();
    e.last_error = row[5].as<std::string>();
    e.bucket = row[6].as<std::int64_t>();
    e.created_at = row[7].as<std::int64_t>();
    e.next_attempt_at = row[8].as<std::int64_t>();
    if (!row[9].is_null())
      e.delivered_at = row[9].as<std::int64_t>();
    if (!row[10].is_null())
      e.last_status = row[10].as<int>();
    e.observed = row[11].as<double>();
    e.attempts = row[12].as<int>();
    out.push_back(std::move(e));
  }
  return out;
}

std::string render_events(const std::vector<event_row>& rows) {
  using namespace http::json;
  rapidjson::StringBuffer buf;
  writer w{buf};
  w.StartObject();
  w.Key("events");
  w.StartArray();
  for (auto& e : rows) {
    w.StartObject();
    field(w, "alert_id", e.alert_id);
    field(w, "incident_id", e.incident_id);
    field(w, "rule_id", e.rule_id);
    field(w, "status", e.status);
    // Matched by a silence when it was produced: history only, never delivered.
    field(w, "silenced", e.delivery == "silenced");
    time_field(w, "bucket", e.bucket);
    if (std::isfinite(e.observed)) {
      field(w, "observed", e.observed);
    } else {
      w.Key("observed");  // a no_data transition observed nothing
      w.Null();
    }
    time_field(w, "created_at", e.created_at);
    w.Key("delivery");
    w.StartObject();
    field(w, "status", e.delivery);
    field(w, "attempts", e.attempts);
    field(w, "last_http_status", e.last_status);
    text_or_null(w, "last_error", e.last_error);
    time_field(w, "delivered_at", e.delivered_at);
    time_field(w, "next_attempt_at", e.delivery == "pending"
                                          ? std::optional<std::int64_t>(e.next_attempt_at)
                                          : std::nullopt);
    w.EndObject();
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return buf.GetString();
}

namespace {

// '{a,b}' array literal for `= ANY($1::text[])`; destinations never contain ',', '"' or '{'
// (parse_webhook_url rejects whitespace; hosts are plain names), quoting keeps it safe anyway.
std::string text_array(const std::vector<std::string>& v) {
  std::string out = "{";
  for (std::size_t i = 0; i < v.size(); ++i) {
    out += i ? ",\"" : "\"";
    for (char c : v[i]) {
      if (c == '"' || c == '\\')
        out += '\\';
      out += c;
    }
    out += '"';
  }
  return out + "}";
}

// Every due row of up to `limit` groups, one outbox_item per group. The receiver (URL, kind,
// secret) is read now, so a changed receiver — a rotated secret — applies to what is pending.
void claim_groups(pqxx::work& tx, const std::vector<std::string>& busy, int limit,
                  std::int64_t lease_ms, int group_cap, std::vector<outbox_item>& out) {
  // Receivers whose destination is at its in-flight limit are left out, like private rows:
  // their groups stay claimable by other instances instead of waiting in our queue.
  std::vector<std::string> busy_receivers;
  if (!busy.empty())
    for (auto row : tx.exec("SELECT id::text, kind, url FROM alert_receivers")) {
      auto url = row[2].as<std::string>();
      if (row[1].as<std::string>() == "alertmanager") {
        while (!url.empty() && url.back() == '/')
          url.pop_back();
        url += "/api/v2/alerts";
      }
      auto t = parse_webhook_url(url);
      if (t && std::find(busy.begin(), busy.end(), t->destination()) != busy.end())
        busy_receivers.push_back(row[0].as<std::string>());
    }
  // The oldest group_cap rows of each due group (window functions cannot take row locks:
  // rank first, lock the ranked rows after).
  auto res = tx.exec_params(
      "WITH due_groups AS (SELECT DISTINCT receiver_id, group_key FROM alert_notifications "
      "  WHERE delivery = 'pending' AND receiver_id IS NOT NULL AND next_attempt_at <= now() "
      "    AND (lease_until IS NULL OR lease_until < now()) "
      "    AND NOT (receiver_id = ANY($4::uuid[])) LIMIT $1::int), "
      "ranked AS (SELECT n.alert_id, row_number() OVER (PARTITION BY n.receiver_id, n.group_key "
      "    ORDER BY n.created_at, n.alert_id) AS k FROM alert_notifications n JOIN due_groups g "
      "    ON g.receiver_id = n.receiver_id AND g.group_key = n.group_key "
      "  WHERE n.delivery = 'pending' AND n.next_attempt_at <= now() "
      "    AND (n.lease_until IS NULL OR n.lease_until < now())), "
      "picked AS (SELECT n.alert_id FROM alert_notifications n WHERE n.alert_id IN "
      "    (SELECT alert_id FROM ranked WHERE k <= $3::int) AND n.delivery = 'pending' "
      "    AND (n.lease_until IS NULL OR n.lease_until < now()) FOR UPDATE OF n SKIP LOCKED) "
      "UPDATE alert_notifications n SET lease_until = now() + $2::bigint * interval '1 ms', "
      "       attempts = n.attempts + 1 FROM picked WHERE n.alert_id = picked.alert_id "
      "RETURNING n.alert_id::text, n.receiver_id::text, n.group_key, n.payload, n.attempts, "
      "          n.created_at",
      limit, lease_ms, group_cap, uuid_array(busy_receivers));
  if (res.empty())
    return;
  struct row_t {
    std::string created, alert_id, payload;
    int attempts = 0;
  };
  std::map<std::pair<std::string, std::string>, std::vector<row_t>> groups;
  for (auto row : res)
    groups[{row[1].as<std::string>(), row[2].as<std::string>()}].push_back(
        {row[5].as<std::string>(), row[0].as<std::string>(), row[3].as<std::string>(),
         row[4].as<int>()});
  std::vector<std::string> receiver_ids;
  for (auto& [k, rows] : groups)
    receiver_ids.push_back(k.first);
  struct receiver_row {
    std::string kind, url, secret;
  };
  std::map<std::string, receiver_row> receivers;
  for (auto row : tx.exec_params("SELECT id::text, kind, url, secret FROM alert_receivers "
                                 "WHERE id = ANY($1::uuid[])",
                                 uuid_array(receiver_ids)))
    receivers[row[0].as<std::string>()] = {row[1].as<std::string>(), row[2].as<std::string>(),
                                           row[3].as<std::string>()};
  for (auto& [k, rows] : groups) {
    std::sort(rows.begin(), rows.end(), [](const row_t& a, const row_t& b) {
      return std::tie(a.created, a.alert_id) < std::tie(b.created, b.alert_id);
    });
    outbox_item item;
    std::vector<std::string> payloads;
    for (auto& r : rows) {
      item.alert_ids.push_back(r.alert_id);
      payloads.push_back(r.payload);
      item.attempts = std::max(item.attempts, r.attempts);
    }
    auto rc = receivers.find(k.first);
    if (rc == receivers.end()) {
      // The receiver was deleted after its rule: nowhere to deliver.
      tx.exec_params("UPDATE alert_notifications SET delivery = 'failed', lease_until = NULL, "
                     "last_error = 'receiver_deleted' WHERE alert_id = ANY($1::uuid[])",
                     uuid_array(item.alert_ids));
      continue;
    }
    tx.exec_params("UPDATE alert_groups SET flush_at = NULL, last_flush_at = now() "
                   "WHERE receiver_id = $1::uuid AND group_key = $2",
                   k.first, k.second);
    item.alert_id = random_uuid();
    if (rc->second.kind == "alertmanager") {
      auto base = rc->second.url;
      while (!base.empty() && base.back() == '/')
        base.pop_back();
      item.webhook_url = base + "/api/v2/alerts";
      item.payload = alertmanager_body(payloads);
      item.sign = false;
    } else {
      item.webhook_url = rc->second.url;
      item.webhook_secret = rc->second.secret;
      item.payload = group_body(k.second, payloads);
    }
    if (auto t = parse_webhook_url(item.webhook_url))
      item.destination = t->destination();
    out.push_back(std::move(item));
  }
}

} // namespace

std::vector<outbox_item> claim_due(db::session& s, const std::vector<std::string>& busy,
                                   int limit, std::int64_t lease_ms, int group_cap) {
  pqxx::work tx{s.conn()};
  auto res = tx.exec_params(
      "WITH due AS (SELECT alert_id FROM alert_notifications "
      " WHERE delivery = 'pending' AND receiver_id IS NULL AND next_attempt_at <= now() "
      "   AND (lease_until IS NULL OR lease_until < now()) "
      "   AND NOT (destination = ANY($1::text[])) "
      " ORDER BY next_attempt_at LIMIT $2::int FOR UPDATE SKIP LOCKED) "
      "UPDATE alert_notifications n SET lease_until = now() + $3::bigint * interval '1 ms', "
      "       attempts = n.attempts + 1 "
      "  FROM due WHERE n.alert_id = due.alert_id "
      "RETURNING n.alert_id::text, n.payload, n.webhook_url, n.webhook_secret, n.destination, "
      "          n.attempts",
      text_array(busy), limit, lease_ms);
  std::vector<outbox_item> out;
  for (auto row : res) {
    outbox_item item;
    item.alert_id = row[0].as<std::string>();
    item.payload = row[1].as<std::string>();
    item.webhook_url = row[2].as<std::string>();
    item.webhook_secret = row[3].as<std::string>();
    item.destination = row[4].as<std::string>();
    item.attempts = row[5].as<int>();
    item.alert_ids = {item.alert_id};
    out.push_back(std::move(item));
  }
  const int groups_limit = limit - static_cast<int>(out.size());
  if (groups_limit > 0)
    claim_groups(tx, busy, groups_limit, lease_ms, std::max(1, group_cap), out);
  tx.commit();
  return out;
}

std::optional<std::int64_t> next_due_at(db::session& s) {
  pqxx::nontransaction q{s.conn()};
  auto r = q.exec("SELECT (extract(epoch from min(next_attempt_at)) * 1000000)::bigint "
                  "FROM alert_notifications WHERE delivery = 'pending' AND next_attempt_at > now()");
  if (r.empty() || r[0][0].is_null())
    return std::nullopt;
  return r[0][0].as<std::int64_t>();
}

void record_attempt(db::session& s, const attempt_record& a) {
  pqxx::work tx{s.conn()};
  const char* delivery = a.kind == attempt_record::delivered ? "delivered"
                         : a.kind == attempt_record::failed  ? "failed"
                                                             : "pending";
  tx.exec_params(
      "UPDATE alert_notifications SET delivery = $2, lease_until = NULL, "
      "last_status = NULLIF($3::int, 0), last_error = NULLIF($4, ''), "
      "next_attempt_at = CASE WHEN $2 = 'pending' THEN now() + $5::bigint * interval '1 ms' "
      "                       ELSE next_attempt_at END, "
      "delivered_at = CASE WHEN $2 = 'delivered' THEN now() ELSE delivered_at END "
      "WHERE alert_id = ANY($1::uuid[]) AND delivery = 'pending'",
      uuid_array(a.alert_ids), delivery, a.http_status, a.error, a.retry_in_ms);
  tx.commit();
}

std::vector<am_firing> firing_for_alertmanager(db::session& s, const std::string& after_rule_id,
                                               int limit) {
  pqxx::nontransaction q{s.conn()};
  std::vector<am_firing> out;
  // The silence labels (rule_id, scope_id, household_id, rule labels) come from the payload,
  // which carries all of them.
  for (auto row : q.exec_params(
           "SELECT s.rule_id::text, rc.url, n.payload FROM alert_rule_state s "
           "  JOIN alert_rules r ON r.id = s.rule_id AND r.enabled "
           "  JOIN alert_receivers rc ON rc.id = r.receiver_id AND rc.kind = 'alertmanager' "
           "  JOIN alert_notifications n ON n.alert_id = s.incident_id "
           " WHERE s.phase = 'firing' AND NOT s.silenced_pending "
           "   AND s.rule_id > COALESCE(NULLIF($1, '')::uuid, "
           "                            '00000000-0000-0000-0000-000000000000'::uuid) "
           "   AND NOT EXISTS (SELECT 1 FROM alert_silences x WHERE x.starts_at <= now() "
           "     AND x.ends_at > now() AND x.matchers <@ (COALESCE(n.payload::jsonb -> 'labels', "
           "     '{}'::jsonb) || jsonb_strip_nulls(jsonb_build_object("
           "       'rule_id', n.payload::jsonb ->> 'rule_id', "
           "       'scope_id', n.payload::jsonb ->> 'scope_id', "
           "       'household_id', n.payload::jsonb ->> 'household_id')))) "
           " ORDER BY s.rule_id LIMIT $2::int",
           after_rule_id, limit))
    out.push_back({row[0].as<std::string>(), row[1].as<std::string>(), row[2].as<std::string>()});
  return out;
}

redeliver_result redeliver(db::session& s, const std::string& alert_id,
                           const std::vector<std::string>& households) {
  pqxx::work tx{s.conn()};
  auto found = tx.exec_params(
      "SELECT delivery FROM alert_notifications WHERE alert_id = $1::uuid "
      "AND (cardinality($2::uuid[]) = 0 OR rule_id IN (SELECT r.id FROM alert_rules r WHERE " +
          visible("$2") + ")) FOR UPDATE",
      alert_id, uuid_array(households));
  if (found.empty())
    return redeliver_result::missing;
  if (found[0][0].as<std::string>() != "failed")
    return redeliver_result::not_failed;
  // A notification to the rule's own webhook goes to the rule's current webhook: the usual
  // reason to redeliver is a receiver fixed after the failure, often moved or with a rotated
  // secret. (A grouped one reads its receiver at claim time anyway; a rule deleted since, or
  // routed to a named receiver now, keeps the original target.)
  auto target = tx.exec_params("SELECT r.webhook_url, r.webhook_secret FROM alert_rules r "
                               "JOIN alert_notifications n ON n.rule_id = r.id "
                               "WHERE n.alert_id = $1::uuid AND n.receiver_id IS NULL "
                               "AND r.receiver_id IS NULL AND r.webhook_url <> ''",
                               alert_id);
  std::string url, secret, destination;
  if (!target.empty()) {
    url = target[0][0].as<std::string>();
    secret = target[0][1].as<std::string>();
    if (auto t = parse_webhook_url(url))
      destination = t->destination();
    else
      url.clear();  // unusable now: keep the stored target (the attempt reports it)
  }
  tx.exec_params("UPDATE alert_notifications n SET delivery = 'pending', attempts = 0, "
                 "next_attempt_at = now(), lease_until = NULL, last_error = NULL, "
                 "last_status = NULL, webhook_url = COALESCE(NULLIF($2, ''), n.webhook_url), "
                 "webhook_secret = CASE WHEN $2 = '' THEN n.webhook_secret ELSE $3 END, "
                 "destination = COALESCE(NULLIF($4, ''), n.destination) "
                 "WHERE n.alert_id = $1::uuid",
                 alert_id, url, secret, destination);
  tx.commit();
  return redeliver_result::queued;
}

release_result release_silenced(db::session& s, std::optional<std::int64_t> since, bool full,
                                int limit) {
  release_result out;
  pqxx::work tx{s.conn()};
  // Cheap first: is anything waiting (partial index on silenced_pending), and can anything
  // have changed since the last check (a silence that ended since: index on ends_at)?
  auto pre = tx.exec_params(
      "SELECT (extract(epoch from now()) * 1000000)::bigint, "
      "EXISTS (SELECT 1 FROM alert_rule_state WHERE silenced_pending), "
      "$1 = '' OR EXISTS (SELECT 1 FROM alert_silences WHERE ends_at > NULLIF($1, '')::timestamptz "
      "AND ends_at <= now())",
      since && !full ? format_rfc3339(*since) : std::string{});
  out.checked_at = pre[0][0].as<std::int64_t>();
  if (!pre[0][1].as<bool>() || !pre[0][2].as<bool>()) {
    tx.commit();
    return out;
  }
  out.ran = true;
  // Only rows no silence matches now are locked (the labels silences match: the rule's own,
  // rule_id, scope_id, household_id).
  auto res = tx.exec_params(
      std::string("SELECT ") + rule_columns +
          ", s.incident_id::text, (extract(epoch from s.fired_at) * 1000000)::bigint, "
          "s.repeats, (extract(epoch from now()) * 1000000)::bigint, "
          "(SELECT (extract(epoch from n.bucket) * 1000000)::bigint FROM "
          "   alert_notifications n WHERE n.rule_id = s.rule_id AND "
          "   n.incident_id = s.incident_id ORDER BY n.created_at DESC LIMIT 1), "
          "(SELECT n.observed FROM alert_notifications n WHERE n.rule_id = s.rule_id "
          "   AND n.incident_id = s.incident_id ORDER BY n.created_at DESC LIMIT 1) "
          "FROM alert_rule_state s JOIN alert_rules r ON r.id = s.rule_id "
          "WHERE s.silenced_pending AND s.phase = 'firing' AND s.incident_id IS NOT NULL "
          "AND NOT EXISTS (SELECT 1 FROM alert_silences x WHERE x.starts_at <= now() "
          "  AND x.ends_at > now() AND x.matchers <@ (r.labels || jsonb_strip_nulls("
          "  jsonb_build_object('rule_id', r.id::text, 'scope_id', r.scope_id::text, "
          "  'household_id', COALESCE(CASE WHEN r.scope = 'household' THEN r.scope_id END, "
          "  (SELECT d.household_id FROM devices d WHERE d.id = r.scope_id))::text)))) "
          "LIMIT $1::int FOR UPDATE OF s SKIP LOCKED",
      limit);
  const int c = rule_column_count;
  for (auto row : res) {
    auto rule = rule_from(row);
    auto incident = row[c].as<std::string>();
    auto fired_at = row[c + 1].is_null() ? 0 : row[c + 1].as<std::int64_t>();
    auto now = row[c + 3].as<std::int64_t>();
    auto bucket = row[c + 4].is_null() ? fired_at : row[c + 4].as<std::int64_t>();
    auto observed = row[c + 5].is_null() ? 0.0 : row[c + 5].as<double>();
    // A new alert id under the same incident: what the receiver has not seen yet.
    auto n = make_notification(rule, transition::fired, random_uuid(), incident, bucket, observed,
                               fired_at, now, row[c + 2].as<int>());
    if (is_silenced(tx, n))
      continue;  // another silence still matches
    insert_notes(tx, {n});
    tx.exec_params("UPDATE alert_rule_state SET silenced_pending = false WHERE rule_id = $1::uuid",
                   rule.id);
    ++out.released;
  }
  tx.commit();
  return out;
}

std::int64_t delete_expired(db::session& s, std::int64_t retention_ms, int batch) {
  pqxx::work tx{s.conn()};
  // Pending rows are never deleted (they still have to be delivered); batches keep the
  // transaction and its locks short.
  // Nor the first notification of an incident still open: Alertmanager re-posts and silence
  // releases read the incident from it (a device dead for a month still fires).
  auto n = tx.exec_params("DELETE FROM alert_notifications WHERE alert_id IN (SELECT n.alert_id "
                          "FROM alert_notifications n WHERE n.created_at < now() - $1::bigint * "
                          "interval '1 ms' AND n.delivery <> 'pending' AND NOT EXISTS (SELECT 1 "
                          "FROM alert_rule_state s WHERE s.incident_id = n.alert_id "
                          "AND s.phase = 'firing') LIMIT $2::int)",
                          retention_ms, batch)
               .affected_rows();
  n += tx.exec_params("DELETE FROM alert_silences WHERE ends_at < now() - $1::bigint * "
                      "interval '1 ms'",
                      retention_ms)
           .affected_rows();
  tx.commit();
  return static_cast<std::int64_t>(n);
}

std::pair<std::int64_t, std::int64_t> outbox_depth(db::session& s) {
  pqxx::nontransaction q{s.conn()};
  auto r = q.exec(
      "SELECT count(*), COALESCE((extract(epoch from now() - min(next_attempt_at)) * 1000000)"
      "::bigint, 0) FROM alert_notifications WHERE delivery = 'pending'");
  return {r[0][0].as<std::int64_t>(), r[0][1].as<std::int64_t>()};
}

} // namespace joule::rules
