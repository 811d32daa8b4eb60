#pragma once
// Asking the cache broker for an answer (or an answer part) from a route handler, with the
// single-flight contract: a caller told "not found" computes the body and owes the broker a
// put or a drop for the key (the broker passes it to everyone who asked meanwhile).

#include <string>

#include <caf/event_based_actor.hpp>

#include "core/interfaces.hpp"
#include "http/errors.hpp"
#include "http/handler.hpp"

namespace joule::http {

/// `found(lookup)` when the broker has `key`, else `compute(outcome)`. Without a broker, or
/// when the broker itself failed (restarting), `compute(bypass)`: answered from the database.
/// No CAF timeout (see analytics_routes.cpp, no_timeout).
template <class Found, class Compute>
void ask_cache(caf::event_based_actor* self, const cache_actor& cache, const std::string& key,
               Found found, Compute compute, reply_fn reply) {
  if (!cache)
    return compute(cache_outcome::bypass);
  self->request(cache, caf::infinite, get_atom::value, key)
      .then(
          [found, compute](cache_lookup& l) {
            if (l.found)
              found(l);
            else
              compute(l.outcome);
          },
          [reply, compute](caf::error& e) {
            if (e.category() != caf::atom("joule"))
              return compute(cache_outcome::bypass);
            reply(error_response(e));
          });
}

/// The error handler of a computation the broker waits for: drops the key (everyone waiting
/// gets the error) and answers with it.
inline auto drop_and_fail(caf::event_based_actor* self, const cache_actor& cache,
                          const std::string& key, reply_fn reply) {
  return [self, cache, key, reply](caf::error& e) {
    if (cache)
      self->send(cache, drop_atom::value, key, e);
    reply(error_response(e));
  };
}

} // namespace joule::http
