#include "rules/receiver_sql.hpp"

#include <pqxx/pqxx>

#include "db/session.hpp"
#include "rules/feed_sql.hpp"

namespace joule::rules {
namespace {

const char* columns =
    "id::text, name, kind, url, secret, array_to_string(group_by, ','), group_wait_sec, "
    "group_interval_sec, (extract(epoch from created_at) * 1000000)::bigint, "
    "(extract(epoch from updated_at) * 1000000)::bigint";

// Visible to a caller with households `$param` (uuid[]; empty = every receiver).
std::string visible(const std::string& param) {
  return "(cardinality(" + param + "::uuid[]) = 0 OR (cardinality(owner_households) > 0 AND "
         "owner_households <@ " + param + "::uuid[]))";
}

alert_receiver receiver_from(const pqxx::row& row) {
  alert_receiver r;
  r.id = row[0].as<std::string>();
  r.name = row[1].as<std::string>();
  r.kind = row[2].as<std::string>() == "alertmanager" ? receiver_kind::alertmanager
                                                      : receiver_kind::webhook;
  r.url = row[3].as<std::string>();
  r.secret = row[4].as<std::string>();
  auto by = row[5].as<std::string>();
  for (std::size_t i = 0; i < by.size();) {
    auto j = by.find(',', i);
    if (j == std::string::npos)
      j = by.size();
    r.group_by.push_back(by.substr(i, j - i));
    i = j + 1;
  }
  r.group_wait_sec = row[6].as<std::int64_t>();
  r.group_interval_sec = row[7].as<std::int64_t>();
  r.created_at = row[8].as<std::int64_t>();
  r.updated_at = row[9].as<std::int64_t>();
  return r;
}

// '{a,b}' for text[] (group_by values are validated names).
std::string names(const std::vector<std::string>& v) {
  std::string out = "{";
  for (std::size_t i = 0; i < v.size(); ++i)
    out += (i ? "," : "") + v[i];
  return out + "}";
}

} // namespace

alert_receiver create_receiver(db::session& s, const alert_receiver& r,
                               const std::vector<std::string>& households) {
  pqxx::work tx{s.conn()};
  auto res = tx.exec_params(
      std::string("INSERT INTO alert_receivers (name, kind, url, secret, group_by, "
                  "group_wait_sec, group_interval_sec, owner_households) VALUES ($1, $2, $3, "
                  "$4, $5::text[], $6::int, $7::int, $8::uuid[]) RETURNING ") + columns,
      r.name, to_string(r.kind), r.url, r.secret, names(r.group_by), r.group_wait_sec,
      r.group_interval_sec, uuid_array(households));
  tx.commit();
  return receiver_from(res[0]);
}

std::optional<alert_receiver> update_receiver(db::session& s, const std::string& id,
                                              const alert_receiver& r,
                                              const std::vector<std::string>& households) {
  pqxx::work tx{s.conn()};
  auto res = tx.exec_params(
      std::string("UPDATE alert_receivers SET name = $2, kind = $3, url = $4, secret = $5, "
                  "group_by = $6::text[], group_wait_sec = $7::int, group_interval_sec = $8::int, "
                  "updated_at = now() WHERE id = $1::uuid AND ") + visible("$9") +
          " RETURNING " + columns,
      id, r.name, to_string(r.kind), r.url, r.secret, names(r.group_by), r.group_wait_sec,
      r.group_interval_sec, uuid_array(households));
  tx.commit();
  if (res.empty())
    return std::nullopt;
  return receiver_from(res[0]);
}

std::optional<alert_receiver> get_receiver(db::session& s, const std::string& id,
                                           const std::vector<std::string>& households) {
  pqxx::nontransaction q{s.conn()};
  auto res = q.exec_params(std::string("SELECT ") + columns +
                               " FROM alert_receivers WHERE id = $1::uuid AND " + visible("$2"),
                           id, uuid_array(households));
  if (res.empty())
    return std::nullopt;
  return receiver_from(res[0]);
}

std::vector<alert_receiver> list_receivers(db::session& s,
                                           const std::vector<std::string>& households) {
  pqxx::nontransaction q{s.conn()};
  std::vector<alert_receiver> out;
  for (auto row : q.exec_params(std::string("SELECT ") + columns + " FROM alert_receivers WHERE " +
                                    visible("$1") + " ORDER BY created_at, id",
                                uuid_array(households)))
    out.push_back(receiver_from(row));
  return out;
}

receiver_delete delete_receiver(db::session& s, const std::string& id,
                                const std::vector<std::string>& households) {
  pqxx::work tx{s.conn()};
  auto found = tx.exec_params("SELECT 1 FROM alert_receivers WHERE id = $1::uuid AND " +
                                  visible("$2") + " FOR UPDATE",
                              id, uuid_array(households));
  if (found.empty())
    return receiver_delete::missing;
  if (!tx.exec_params("SELECT 1 FROM alert_rules WHERE receiver_id = $1::uuid LIMIT 1", id).empty())
    return receiver_delete::in_use;
  tx.exec_params("DELETE FROM alert_receivers WHERE id = $1::uuid", id);
  tx.commit();
  return receiver_delete::deleted;
}

} // namespace joule::rules
