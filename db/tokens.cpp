#include "db/tokens.hpp"

#include <algorithm>

#include <pqxx/pqxx>

#include "db/session.hpp"

namespace joule::db {
namespace {

const char* columns =
    "id::text, name, array_to_string(scopes, ','), array_to_string(households, ','), "
    "(extract(epoch from created_at) * 1000000)::bigint, "
    "(extract(epoch from expires_at) * 1000000)::bigint, "
    "(extract(epoch from revoked_at) * 1000000)::bigint, "
    "(extract(epoch from last_used_at) * 1000000)::bigint";

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while (pos < s.size()) {
    auto comma = s.find(',', pos);
    if (comma == std::string::npos)
      comma = s.size();
    out.push_back(s.substr(pos, comma - pos));
    pos = comma + 1;
  }
  return out;
}

std::optional<std::int64_t> opt_us(const pqxx::field& f) {
  if (f.is_null())
    return std::nullopt;
  return f.as<std::int64_t>();
}

token_record record_from(const pqxx::row& row, int c = 0) {
  token_record r;
  r.id = row[c].as<std::string>();
  r.name = row[c + 1].as<std::string>();
  for (auto& n : split(row[c + 2].as<std::string>()))
    if (auto s = auth::scope_from(n))
      r.scopes |= auth::bit(*s);
  r.households = split(row[c + 3].as<std::string>());
  std::sort(r.households.begin(), r.households.end());
  r.created_at = row[c + 4].as<std::int64_t>();
  r.expires_at = opt_us(row[c + 5]);
  r.revoked_at = opt_us(row[c + 6]);
  r.last_used_at = opt_us(row[c + 7]);
  return r;
}

// '{a,b}' for `$n::uuid[]` / `$n::text[]`: the items are validated UUIDs, hex digests or scope
// names, none of which needs quoting.
std::string pg_array(const std::vector<std::string>& items) {
  std::string out = "{";
  for (std::size_t i = 0; i < items.size(); ++i)
    out += (i ? "," : "") + items[i];
  return out + "}";
}

std::vector<std::string> sorted_unique(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  return v;
}

} // namespace

created_token create_token(session& s, const token_spec& spec) {
  created_token out;
  out.secret = auth::new_token();
  auto households = sorted_unique(spec.households);
  pqxx::work tx{s.conn()};
  auto res = tx.exec_params(
      std::string("INSERT INTO api_tokens (name, scopes, households, token_hash, expires_at) "
                  "VALUES ($1, $2::text[], $3::uuid[], decode($4, 'hex'), "
                  "CASE WHEN $5::bigint < 0 THEN NULL "
                  "ELSE now() + $5::bigint * interval '1 microsecond' END) RETURNING ") +
          columns,
      spec.name, pg_array(auth::scope_names(spec.scopes)), pg_array(households),
      auth::to_hex(auth::sha256(out.secret)), spec.expires_in_us.value_or(-1));
  tx.commit();
  out.record = record_from(res[0]);
  return out;
}

std::vector<token_record> list_tokens(session& s, const std::vector<std::string>& within) {
  pqxx::nontransaction q{s.conn()};
  auto res = q.exec_params(
      std::string("SELECT ") + columns +
          " FROM api_tokens WHERE cardinality($1::uuid[]) = 0 OR (cardinality(households) > 0 AND "
          "households <@ $1::uuid[]) ORDER BY created_at, id",
      pg_array(within));
  std::vector<token_record> out;
  for (auto row : res)
    out.push_back(record_from(row));
  return out;
}

revoke_outcome revoke_token(session& s, const std::string& id,
                            const std::vector<std::string>& within) {
  pqxx::work tx{s.conn()};
  auto res = tx.exec_params(
      "UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, now()) WHERE id = $1::uuid "
      "AND (cardinality($2::uuid[]) = 0 OR (cardinality(households) > 0 AND households <@ $2::uuid[])) "
      "RETURNING revoked_at = now()",
      id, pg_array(within));
  tx.commit();
  if (res.empty())
    return revoke_outcome::unknown;
  // now() is the transaction's start: equal exactly when this statement set it.
  return res[0][0].as<bool>() ? revoke_outcome::revoked : revoke_outcome::already_revoked;
}

std::optional<token_record> find_valid_token(session& s, const std::string& hash) {
  s.prepare("auth_find",
            std::string("SELECT token_hash, ") + columns +
                " FROM api_tokens WHERE token_hash = decode($1, 'hex') AND revoked_at IS NULL "
                "AND (expires_at IS NULL OR expires_at > now())");
  pqxx::nontransaction q{s.conn()};
  auto res = q.exec_prepared("auth_find", auth::to_hex(hash));
  if (res.empty())
    return std::nullopt;
  pqxx::binarystring stored{res[0][0]};
  if (!auth::same_digest(stored.str(), hash))
    return std::nullopt;
  return record_from(res[0], 1);
}

std::vector<std::pair<std::string, token_record>> still_valid(
    session& s, const std::vector<std::string>& hashes) {
  std::vector<std::pair<std::string, token_record>> out;
  if (hashes.empty())
    return out;
  std::vector<std::string> hex;
  hex.reserve(hashes.size());
  for (auto& h : hashes)
    hex.push_back(auth::to_hex(h));
  s.prepare("auth_still_valid",
            std::string("SELECT token_hash, ") + columns +
                " FROM api_tokens WHERE token_hash IN (SELECT decode(h, 'hex') FROM "
                "unnest($1::text[]) h) AND revoked_at IS NULL "
                "AND (expires_at IS NULL OR expires_at > now())");
  pqxx::nontransaction q{s.conn()};
  for (auto row : q.exec_prepared("auth_still_valid", pg_array(hex))) {
    pqxx::binarystring stored{row[0]};
    out.emplace_back(stored.str(), record_from(row, 1));
  }
  return out;
}

void record_token_use(session& s, const std::vector<std::pair<std::string, std::int64_t>>& uses) {
  if (uses.empty())
    return;
  std::vector<std::string> ids, times;
  for (auto& [id, at] : uses) {
    ids.push_back(id);
    times.push_back(std::to_string(at));
  }
  pqxx::work tx{s.conn()};
  tx.exec_params(
      "UPDATE api_tokens t SET last_used_at = to_timestamp(u.at / 1000000.0) "
      "FROM unnest($1::uuid[], $2::bigint[]) AS u(id, at) "
      "WHERE t.id = u.id AND (t.last_used_at IS NULL OR t.last_used_at < to_timestamp(u.at / 1000000.0))",
      pg_array(ids), pg_array(times));
  tx.commit();
}

} // namespace joule::db
