#include "rules/silence_sql.hpp"

#include <pqxx/pqxx>

#include <rapidjson/document.h>

#include "core/timefmt.hpp"
#include "db/session.hpp"
#include "rules/feed_sql.hpp"

namespace joule::rules {
namespace {

const char* columns =
    "id::text, matchers::text, (extract(epoch from starts_at) * 1000000)::bigint, "
    "(extract(epoch from ends_at) * 1000000)::bigint, comment, "
    "(extract(epoch from created_at) * 1000000)::bigint";

std::string visible(const std::string& param) {
  return "(cardinality(" + param + "::uuid[]) = 0 OR (cardinality(owner_households) > 0 AND "
         "owner_households <@ " + param + "::uuid[]))";
}

alert_silence silence_from(const pqxx::row& row) {
  alert_silence s;
  s.id = row[0].as<std::string>();
  rapidjson::Document d;
  auto text = row[1].as<std::string>();
  d.Parse(text.c_str());
  if (!d.HasParseError() && d.IsObject())
    for (auto m = d.MemberBegin(); m != d.MemberEnd(); ++m)
      if (m->value.IsString())
        s.matchers[m->name.GetString()] = m->value.GetString();
  s.starts_at = row[2].as<std::int64_t>();
  s.ends_at = row[3].as<std::int64_t>();
  s.comment = row[4].as<std::string>();
  s.created_at = row[5].as<std::int64_t>();
  return s;
}

} // namespace

alert_silence create_silence(db::session& s, const alert_silence& si,
                             const std::vector<std::string>& households) {
  pqxx::work tx{s.conn()};
  auto res = tx.exec_params(
      std::string("INSERT INTO alert_silences (matchers, starts_at, ends_at, comment, "
                  "owner_households) VALUES ($1::jsonb, $2::timestamptz, $3::timestamptz, $4, "
                  "$5::uuid[]) RETURNING ") + columns,
      matchers_json(si.matchers), format_rfc3339(si.starts_at), format_rfc3339(si.ends_at),
      si.comment, uuid_array(households));
  tx.commit();
  return silence_from(res[0]);
}

std::vector<alert_silence> list_silences(db::session& s,
                                         const std::vector<std::string>& households) {
  pqxx::nontransaction q{s.conn()};
  std::vector<alert_silence> out;
  for (auto row : q.exec_params(std::string("SELECT ") + columns + " FROM alert_silences WHERE " +
                                    visible("$1") + " ORDER BY starts_at, id",
                                uuid_array(households)))
    out.push_back(silence_from(row));
  return out;
}

std::optional<alert_silence> get_silence(db::session& s, const std::string& id,
                                         const std::vector<std::string>& households) {
  pqxx::nontransaction q{s.conn()};
  auto res = q.exec_params(std::string("SELECT ") + columns +
                               " FROM alert_silences WHERE id = $1::uuid AND " + visible("$2"),
                           id, uuid_array(households));
  if (res.empty())
    return std::nullopt;
  return silence_from(res[0]);
}

bool delete_silence(db::session& s, const std::string& id,
                    const std::vector<std::string>& households) {
  pqxx::work tx{s.conn()};
  auto res = tx.exec_params("DELETE FROM alert_silences WHERE id = $1::uuid AND " +
                                visible("$2") + " RETURNING 1",
                            id, uuid_array(households));
  tx.commit();
  return !res.empty();
}

} // namespace joule::rules
