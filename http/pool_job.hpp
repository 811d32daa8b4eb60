#pragma once
// Running a feature's own SQL from a route handler: `fn(session)` runs as a db_job on the DB
// pool and its result (type T) goes to `then` in the session actor; errors are answered.

#include <any>
#include <chrono>
#include <memory>
#include <utility>

#include <caf/event_based_actor.hpp>

#include "core/interfaces.hpp"
#include "http/errors.hpp"
#include "http/routes.hpp"

namespace joule::http {

template <class T, class Fn, class Then>
void on_pool(caf::event_based_actor* self, const std::shared_ptr<const route_env>& env,
             const char* label, bool retry, Fn fn, reply_fn reply, Then then) {
  auto pool = env->registry->get<db_pool_actor>();
  if (!pool)
    return reply(starting_response());
  db_job job;
  job.label = label;
  job.timeout = env->settings.db_request_deadline;
  job.retry_on_disconnect = retry;
  job.run = [fn = std::move(fn)](db::session& s) -> std::any { return fn(s); };
  self->request(pool, job.timeout + std::chrono::seconds(1), std::move(job))
      .then(
          [reply, then](db_done& d) {
            if (auto* v = std::any_cast<T>(&d.value))
              then(std::move(*v));
            else
              reply(error_response(500, "internal", "internal error"));
          },
          [reply](caf::error& e) { reply(error_response(e)); });
}

} // namespace joule::http
