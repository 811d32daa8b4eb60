#include "rules/lease_sql.hpp"

#include <pqxx/pqxx>

#include "db/session.hpp"
#include "rules/feed_sql.hpp"
#include "rules/rule_sql.hpp"

namespace joule::rules {

std::optional<std::vector<std::string>> heartbeat(db::session& s, const std::string& me,
                                                  std::int64_t lease_ms, bool reset) {
  pqxx::work tx{s.conn()};
  if (reset) {
    tx.exec_params("DELETE FROM alert_rule_leases WHERE owner = $1", me);
    tx.exec_params("INSERT INTO alert_instances (id, expires_at) "
                   "VALUES ($1, now() + $2 * interval '1 millisecond') "
                   "ON CONFLICT (id) DO UPDATE SET heartbeat_at = now(), "
                   "expires_at = EXCLUDED.expires_at",
                   me, lease_ms);
  } else {
    // Only renew: a row deleted by a clean stop (or forgotten after an hour) must not come
    // back with leases the instance no longer has.
    auto res = tx.exec_params("UPDATE alert_instances SET heartbeat_at = now(), "
                              "expires_at = now() + $2 * interval '1 millisecond' "
                              "WHERE id = $1 AND expires_at > now()",
                              me, lease_ms);
    if (res.affected_rows() == 0)
      return std::nullopt;
  }
  tx.exec("DELETE FROM alert_instances WHERE expires_at < now() - interval '1 hour'");
  std::vector<std::string> live;
  for (auto row : tx.exec("SELECT id FROM alert_instances WHERE expires_at > now() ORDER BY id"))
    live.push_back(row[0].as<std::string>());
  tx.commit();
  return live;
}

std::vector<rule_version> rule_versions(db::session& s, const std::vector<std::string>& ids,
                                        bool all) {
  pqxx::nontransaction q{s.conn()};
  std::vector<rule_version> out;
  if (!all && ids.empty())
    return out;
  auto res = all ? q.exec("SELECT id::text, version, enabled FROM alert_rules")
                 : q.exec_params("SELECT r.id::text, r.version, r.enabled FROM "
                                 "unnest($1::uuid[]) AS k(id) JOIN alert_rules r ON r.id = k.id",
                                 uuid_array(ids));
  out.reserve(res.size());
  for (auto row : res)
    out.push_back({row[0].as<std::string>(), row[1].as<std::int64_t>(), row[2].as<bool>()});
  return out;
}

std::vector<std::pair<alert_rule, eval_state>>
change_leases(db::session& s, const std::string& me, const std::vector<std::string>& release,
              const std::vector<std::string>& acquire) {
  std::vector<std::string> held;
  {
    pqxx::work tx{s.conn()};
    if (!release.empty())
      tx.exec_params("DELETE FROM alert_rule_leases l USING unnest($2::uuid[]) AS k(id) "
                     "WHERE l.rule_id = k.id AND l.owner = $1",
                     me, uuid_array(release));
    if (!acquire.empty()) {
      // The WHERE of ON CONFLICT is the claim rule (ownership.hpp may_claim); a row locked by
      // a concurrent claimer is re-checked after that one commits, so one of them wins.
      auto res = tx.exec_params(
          "INSERT INTO alert_rule_leases AS l (rule_id, owner) "
          "SELECT r.id, $1 FROM unnest($2::uuid[]) WITH ORDINALITY AS k(id, n) "
          "JOIN alert_rules r ON r.id = k.id "
          "WHERE r.enabled AND EXISTS (SELECT 1 FROM alert_instances i WHERE i.id = $1 "
          "AND i.expires_at > now()) ORDER BY k.n "
          "ON CONFLICT (rule_id) DO UPDATE SET owner = EXCLUDED.owner, "
          "acquired_at = CASE WHEN l.owner = EXCLUDED.owner THEN l.acquired_at ELSE now() END "
          "WHERE l.owner = EXCLUDED.owner OR NOT EXISTS (SELECT 1 FROM alert_instances i "
          "WHERE i.id = l.owner AND i.expires_at > now()) "
          "RETURNING rule_id::text",
          me, uuid_array(acquire));
      held.reserve(res.size());
      for (auto row : res)
        held.push_back(row[0].as<std::string>());
    }
    tx.commit();
  }
  // Read after the claim committed: the state the previous owner stored last (its saves
  // after this are refused by the state's seq, and the new evaluator adopts them).
  return load_enabled_rules(s, held);
}

void leave(pqxx::connection_base& c, const std::string& me) {
  pqxx::nontransaction q{c};
  q.exec_params("DELETE FROM alert_instances WHERE id = $1", me);
}

} // namespace joule::rules
