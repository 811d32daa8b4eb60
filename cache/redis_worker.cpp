#include "cache/redis_worker.hpp"

namespace joule::cache {

redis_worker_actor::behavior_type
redis_worker(redis_worker_actor::stateful_pointer<redis_worker_state> self, std::string host,
             std::uint16_t port, std::chrono::milliseconds timeout) {
  self->state.client = std::make_unique<redis_client>(std::move(host), port, timeout);
  return {
      [self](get_atom, const std::string& key) -> redis_reply {
        try {
          auto v = self->state.client->get(key);
          if (!v)
            return {redis_reply::miss, {}};
          return {redis_reply::hit, std::move(*v)};
        } catch (const redis_error& e) {
          return {redis_reply::error, e.what()};
        }
      },
      [self](put_atom, const std::string& key, const std::string& value,
             std::int64_t ttl_ms) -> redis_reply {
        try {
          self->state.client->set(key, value, ttl_ms);
          return {redis_reply::hit, {}};
        } catch (const redis_error& e) {
          return {redis_reply::error, e.what()};
        }
      },
      [self](ping_atom) -> redis_reply {
        try {
          self->state.client->ping();
          return {redis_reply::hit, {}};
        } catch (const redis_error& e) {
          return {redis_reply::error, e.what()};
        }
      },
  };
}

} // namespace joule::cache
