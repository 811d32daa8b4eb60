#include "http/ingest_routes.hpp"

#include <chrono>

#include "core/interfaces.hpp"
#include "core/timefmt.hpp"
#include "http/errors.hpp"
#include "http/ingest_parse.hpp"

namespace joule::http {

void add_ingest_routes(route_table& table, std::shared_ptr<const route_env> env) {
  route r;
  r.method = "POST";
  r.pattern = "/telemetry";
  r.name = "telemetry";
  r.scope = auth::scope::ingest;
  r.handler = [env](caf::event_based_actor* self, route_request& req, reply_fn reply) {
    auto& s = env->settings;
    auto parsed = parse_readings(req.raw.body, now_micros(), s.ingest_max_future_skew.count() * 1000);
    if (!parsed.errors.empty()) {
      response bad;
      bad.status = 400;
      bad.body = render_reading_errors(parsed.errors);
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
