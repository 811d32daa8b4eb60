#include "http/ingest_routes.hpp"

#include <chrono>

#include <openssl/sha.h>

#include "core/interfaces.hpp"
#include "core/timefmt.hpp"
#include "http/errors.hpp"
#include "http/ingest_parse.hpp"

namespace joule::http {
namespace {

std::string sha256_hex(const std::string& body) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(body.data()), body.size(), digest);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (auto c : digest) {
    out += hex[c >> 4];
    out += hex[c & 0xf];
  }
  return out;
}

// 1 to 255 visible ASCII characters (what Stripe-style clients send: UUIDs, ULIDs, hashes).
bool valid_key(const std::string& k) {
  if (k.empty() || k.size() > 255)
    return false;
  for (unsigned char c : k)
    if (c < 0x21 || c > 0x7e)
      return false;
  return true;
}

} // namespace

void add_ingest_routes(route_table& table, std::shared_ptr<const route_env> env) {
  route r;
  r.method = "POST";
  r.pattern = "/telemetry";
  r.name = "telemetry";
  r.scope = auth::scope::ingest;
  r.handler = [env](caf::event_based_actor* self, route_request& req, reply_fn reply) {
    auto& s = env->settings;
    auto parsed = parse_readings(req.raw.body, ingest_limits_of(s, now_micros()));
    if (!parsed.errors.empty()) {
      response bad;
      bad.status = 400;
      bad.body = render_reading_errors(parsed);
      return reply(std::move(bad));
    }
    auto writer = env->registry->get<telemetry_writer_actor>();
    if (!writer)
      return reply(starting_response());
    ingest_batch batch;
    batch.rows = std::move(parsed.readings);
    // A restricted token writes only its households: a reading naming another one is refused
    // here; the writer checks each device's registered household in its own lookup.
    if (req.who.restricted())
      for (auto& row : batch.rows)
        if (!row.household_id.empty() && !req.who.may_see(row.household_id))
          return reply(error_response(403, "forbidden",
                                      "household " + row.household_id +
                                          " is not one this token may write; nothing was stored"));
    batch.households = req.who.households;
    // Keys are per token: one tenant's key never answers (or reveals) another's batch.
    batch.owner = req.who.token_id;
    batch.idempotency_key = req.raw.header("Idempotency-Key");
    if (!batch.idempotency_key.empty()) {
      if (!valid_key(batch.idempotency_key))
        return reply(error_response(400, "invalid_idempotency_key",
                                    "Idempotency-Key must be 1 to 255 visible ASCII characters"));
      batch.body_sha256 = sha256_hex(req.raw.body);
    }
    // The client is answered 503 at http.request_timeout: the batch must commit before that
    // or not at all.
    batch.deadline = std::chrono::steady_clock::now() + s.http_request_timeout;
    // The writer answers after its commit or with an error; the request deadline of the
    // session bounds the wait.
    self->request(writer, caf::infinite, std::move(batch))
        .then(
            [reply](ingest_receipt& receipt) {
              response ok;
              ok.status = 202;
              ok.body = "{\"accepted\":" + std::to_string(receipt.accepted) + "}";
              reply(std::move(ok));
            },
            [reply](caf::error& e) { reply(error_response(e)); });
  };
  table.add(std::move(r));
}

} // namespace joule::http
