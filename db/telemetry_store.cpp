#include "db/telemetry_store.hpp"

#include <algorithm>
#include <cstdio>
#include <tuple>
#include <unordered_map>

#include <pqxx/pqxx>
#include <pqxx/stream_to>

#include "core/timefmt.hpp"
#include "db/session.hpp"

namespace joule::db {
namespace {

std::string pg_array(const std::vector<std::string>& ids) {
  std::string out = "{";
  for (size_t i = 0; i < ids.size(); ++i)
    out += (i ? "," : "") + ids[i];  // normalised UUIDs: no quoting needed
  return out + "}";
}

std::string number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

failure key_reused(const std::string& key) {
  failure f;
  f.code = errc::unprocessable;
  f.slug = "idempotency_key_reused";
  f.message = "Idempotency-Key '" + key + "' was already used with a different body";
  return f;
}

// Claims `b`'s key for this transaction. Returns nullopt when the batch is new (write it),
// otherwise its outcome: the first result (same body) or idempotency_key_reused. Blocks while
// another transaction holds the same key uncommitted, then sees what it committed.
std::optional<batch_outcome> claim_key(pqxx::work& tx, const batch_ref& b, std::int64_t ttl_us) {
  auto claimed = tx.exec_params(
      "INSERT INTO ingest_idempotency (owner, key, body_sha256, accepted) "
      "VALUES ($1, $2, decode($3, 'hex'), $4) "
      "ON CONFLICT (owner, key) DO UPDATE SET body_sha256 = EXCLUDED.body_sha256, "
      "  accepted = EXCLUDED.accepted, created_at = now() "
      "WHERE ingest_idempotency.created_at < now() - $5 * interval '1 microsecond' "
      "RETURNING 1",
      b.owner, b.idempotency_key, b.body_sha256, static_cast<long long>(b.rows->size()), ttl_us);
  if (!claimed.empty())
    return std::nullopt;
  auto row = tx.exec_params1(
      "SELECT encode(body_sha256, 'hex'), accepted FROM ingest_idempotency "
      "WHERE owner = $1 AND key = $2",
      b.owner, b.idempotency_key);
  batch_outcome o;
  if (row[0].as<std::string>() != b.body_sha256)
    o.error = key_reused(b.idempotency_key);
  else
    o.accepted = row[1].as<std::uint64_t>();
  return o;
}

} // namespace

std::int64_t expire_idempotency_keys(session& s, std::int64_t ttl_us) {
  pqxx::work tx{s.conn()};
  auto r = tx.exec_params(
      "DELETE FROM ingest_idempotency WHERE created_at < now() - $1 * interval '1 microsecond'",
      ttl_us);
  tx.commit();
  return static_cast<std::int64_t>(r.affected_rows());
}

std::vector<batch_outcome> write_batches(session& s, const std::vector<batch_ref>& batches,
                                         const write_options& opt) {
  std::vector<batch_outcome> out(batches.size());
  std::vector<std::string> ids;
  {
    std::unordered_map<std::string, bool> seen;
    for (auto& b : batches)
      for (auto& r : *b.rows)
        if (seen.emplace(r.device_id, true).second)
          ids.push_back(r.device_id);
  }
  pqxx::work tx{s.conn()};
  // The client stops waiting at its deadline: past it the transaction must abort rather than
  // commit rows the client was told failed.
  if (opt.deadline.count() > 0)
    tx.exec("SET LOCAL statement_timeout = " + std::to_string(opt.deadline.count()));
  std::unordered_map<std::string, std::string> household_of;
  for (auto row : tx.exec_params("SELECT id::text, household_id::text FROM devices "
                                 "WHERE id = ANY($1::uuid[])",
                                 pg_array(ids)))
    household_of.emplace(row[0].as<std::string>(), row[1].as<std::string>());

  std::vector<bool> accepted(batches.size(), true);
  for (size_t i = 0; i < batches.size(); ++i) {
    const std::vector<std::string>* only = batches[i].households;
    if (only && !only->empty()) {
      std::vector<std::string> outside;
      for (auto& r : *batches[i].rows) {
        auto it = household_of.find(r.device_id);
        bool inside = it != household_of.end() &&
                      std::binary_search(only->begin(), only->end(), it->second) &&
                      (r.household_id.empty() ||
                       std::binary_search(only->begin(), only->end(), r.household_id));
        if (!inside && outside.size() < 20 &&
            std::find(outside.begin(), outside.end(), r.device_id) == outside.end())
          outside.push_back(r.device_id);
      }
      if (!outside.empty()) {
        accepted[i] = false;
        failure f;
        f.code = errc::forbidden;
        f.slug = "forbidden";
        f.message = "these devices are not registered in a household this token may write; "
                    "nothing was stored";
        f.list_name = "device_ids";
        f.list = std::move(outside);
        out[i].error = std::move(f);
        continue;
      }
    }
    std::vector<std::string> unknown, mismatch;
    for (auto& r : *batches[i].rows) {
      auto it = household_of.find(r.device_id);
      if (it == household_of.end()) {
        if (unknown.size() < 20 && std::find(unknown.begin(), unknown.end(), r.device_id) == unknown.end())
          unknown.push_back(r.device_id);
      } else if (!r.household_id.empty() && r.household_id != it->second) {
        if (mismatch.size() < 20)
          mismatch.push_back(r.device_id);
      }
    }
    if (unknown.empty() && mismatch.empty())
      continue;
    accepted[i] = false;
    failure f;
    f.code = errc::unprocessable;
    f.list_name = "device_ids";
    f.list = unknown.empty() ? mismatch : unknown;
    if (unknown.empty()) {
      f.slug = "household_mismatch";
      f.message = "household_id differs from the registered household of these devices";
    } else {
      f.slug = "unknown_devices";
      f.message = "these devices are not registered; nothing was stored";
    }
    out[i].error = std::move(f);
  }
  // Keys: a retry inside this group answers like its first occurrence; others are claimed
  // in the database (a committed earlier batch, or one committing concurrently).
  std::unordered_map<std::string, std::size_t> first_of;
  for (size_t i = 0; i < batches.size(); ++i) {
    auto& b = batches[i];
    if (!accepted[i] || b.idempotency_key.empty())
      continue;
    auto id = b.owner + '\n' + b.idempotency_key;
    if (auto it = first_of.find(id); it != first_of.end()) {
      accepted[i] = false;
      if (batches[it->second].body_sha256 == b.body_sha256)
        out[i].accepted = b.rows->size();
      else
        out[i].error = key_reused(b.idempotency_key);
      continue;
    }
    first_of.emplace(id, i);
    if (auto replay = claim_key(tx, b, opt.idempotency_ttl_us)) {
      accepted[i] = false;
      out[i] = std::move(*replay);
    }
  }
  size_t written = 0;
  {
    pqxx::stream_to copy{tx, "telemetry",
                         std::vector<std::string>{"ts", "device_id", "household_id", "power_w",
                                                  "energy_wh"}};
    for (size_t i = 0; i < batches.size(); ++i) {
      if (!accepted[i])
        continue;
      for (auto& r : *batches[i].rows) {
        const auto& hh = r.household_id.empty() ? household_of.at(r.device_id) : r.household_id;
        copy << std::make_tuple(format_rfc3339(r.ts), r.device_id, hh, number(r.power_w),
                                number(r.energy_wh));
        ++written;
      }
      out[i].accepted = batches[i].rows->size();
    }
    copy.complete();
  }
  tx.commit();
  (void)written;
  return out;
}

} // namespace joule::db
