#include "db/auth_actor.hpp"

#include <algorithm>
#include <unordered_set>

#include <caf/actor_system.hpp>

#include "core/log.hpp"
#include "core/metrics.hpp"
#include "core/timefmt.hpp"
#include "db/session.hpp"
#include "db/tokens.hpp"

namespace joule::db {
namespace {

using self_ptr = auth_actor::stateful_pointer<auth_state>;

struct auth_metrics {
  metrics::gauge& cached = metrics::global().get_gauge(
      "joule_auth_cached_tokens", "Verified tokens held in the in-memory cache");
  metrics::counter& lookups = metrics::global().get_counter(
      "joule_auth_lookups_total", "Token hashes looked up in the database (cache misses)");
  metrics::counter& refresh_failures = metrics::global().get_counter(
      "joule_auth_refresh_failures_total", "Failed re-validations of the token cache");
};

auth_metrics& m() {
  static auth_metrics instance;
  return instance;
}

void schedule(self_ptr self) {
  self->delayed_send(self, self->state.cfg.refresh_interval, tick_atom::value);
}

void answer(self_ptr self, const std::string& hash, const auth::verdict& v) {
  auto it = self->state.pending.find(hash);
  if (it == self->state.pending.end())
    return;
  for (auto& rp : it->second)
    rp.deliver(v);
  self->state.pending.erase(it);
}

void fail(self_ptr self, const std::string& hash, const caf::error& e) {
  auto it = self->state.pending.find(hash);
  if (it == self->state.pending.end())
    return;
  for (auto& rp : it->second)
    rp.deliver(e);
  self->state.pending.erase(it);
}

void lookup(self_ptr self, const std::string& hash) {
  auto& st = self->state;
  ++st.lookups;
  m().lookups.inc();
  auto found = std::make_shared<std::optional<token_record>>();
  auto started = now_micros();
  db_job job;
  job.label = "auth.lookup";
  job.timeout = st.cfg.lookup_timeout;
  job.run = [hash, found](session& s) {
    *found = find_valid_token(s, hash);
    return std::any{};
  };
  self->request(st.worker, st.cfg.lookup_timeout + std::chrono::seconds(1), std::move(job))
      .then(
          [self, hash, found, started](db_done&) {
            auto& st = self->state;
            if (!*found) {
              if (st.negative.size() >= st.cfg.negative_max)
                st.negative.clear();
              st.negative[hash] = now_micros() + st.cfg.negative_ttl.count() * 1000;
              return answer(self, hash, auth::verdict{});
            }
            auto e = st.cfg.cache->put(entry_for(hash, **found, started));
            m().cached.set(static_cast<double>(st.cfg.cache->size()));
            answer(self, hash, auth::verdict{e});
          },
          [self, hash](caf::error& e) {
            log(log_level::warn, "auth", "token lookup failed: " + failure_of(e).message);
            fail(self, hash, make_error(errc::unavailable, "auth_unavailable",
                                        "tokens cannot be verified right now; retry shortly"));
          });
}

// Checks every cached token against the table: revoked, expired and deleted ones leave the
// cache, the others count as confirmed from the moment the check started. Coarse last-use
// times are written in the same job.
void refresh(self_ptr self) {
  auto& st = self->state;
  if (st.refreshing)
    return schedule(self);
  st.refreshing = true;
  auto hashes = std::make_shared<std::vector<std::string>>(st.cfg.cache->hashes());
  std::vector<std::pair<std::string, std::int64_t>> uses;
  const auto granularity = st.cfg.last_used_granularity.count() * 1000;
  for (auto& e : st.cfg.cache->entries()) {
    auto used = e->last_used.load(std::memory_order_relaxed);
    auto& done = st.flushed[e->who.token_id];
    if (used > 0 && used - done >= granularity) {
      uses.emplace_back(e->who.token_id, used);
      done = used;
    }
  }
  if (st.flushed.size() > 2 * hashes->size() + 64)
    st.flushed.clear();  // ids of tokens no longer cached; at worst one extra write each
  auto valid = std::make_shared<std::vector<std::pair<std::string, token_record>>>();
  auto started = now_micros();
  db_job job;
  job.label = "auth.refresh";
  job.timeout = st.cfg.lookup_timeout;
  job.run = [hashes, valid, uses = std::move(uses)](session& s) {
    *valid = still_valid(s, *hashes);
    record_token_use(s, uses);
    return std::any{};
  };
  self->request(st.worker, st.cfg.lookup_timeout + std::chrono::seconds(1), std::move(job))
      .then(
          [self, hashes, valid, started](db_done&) {
            auto& st = self->state;
            st.refreshing = false;
            ++st.refreshes;
            st.last_refresh = started;
            std::unordered_set<std::string> ok;
            for (auto& [h, rec] : *valid)
              ok.insert(h);
            for (auto& h : *hashes) {
              if (!ok.count(h)) {
                st.cfg.cache->remove_hash(h);
              } else if (auto e = st.cfg.cache->find(h)) {
                auto cur = e->validated_at.load();
                while (cur < started && !e->validated_at.compare_exchange_weak(cur, started)) {
                }
              }
            }
            auto now = now_micros();
            for (auto it = st.negative.begin(); it != st.negative.end();)
              it = it->second <= now ? st.negative.erase(it) : std::next(it);
            m().cached.set(static_cast<double>(st.cfg.cache->size()));
            schedule(self);
          },
          [self](caf::error& e) {
            auto& st = self->state;
            st.refreshing = false;
            ++st.refresh_failures;
            m().refresh_failures.inc();
            log(log_level::warn, "auth",
                "token re-validation failed: " + failure_of(e).message);
            schedule(self);
          });
}

} // namespace

std::shared_ptr<auth::token_entry> entry_for(const std::string& hash, const token_record& r,
                                             std::int64_t validated_at) {
  auto e = std::make_shared<auth::token_entry>();
  e->hash = hash;
  e->who.token_id = r.id;
  e->who.scopes = r.scopes;
  e->who.households = r.households;
  e->expires_at = r.expires_at.value_or(0);
  e->validated_at = validated_at;
  return e;
}

auth_actor::behavior_type auth(self_ptr self, auth_config cfg, db_worker_actor worker) {
  self->state.cfg = std::move(cfg);
  self->state.worker = std::move(worker);
  self->link_to(self->state.worker);
  m();  // register the metrics now, so /metrics lists them from the start
  schedule(self);
  return {
      [self](verify_atom, std::string& hash) -> caf::typed_response_promise<auth::verdict> {
        auto& st = self->state;
        auto rp = self->make_response_promise<auth::verdict>();
        auto now = now_micros();
        // Another request may have filled the cache meanwhile.
        if (auto e = st.cfg.cache->find(hash);
            e && now - e->validated_at.load() <= auth::max_staleness_us) {
          rp.deliver(auth::verdict{e});
          return rp;
        }
        if (auto it = st.negative.find(hash); it != st.negative.end() && it->second > now) {
          rp.deliver(auth::verdict{});
          return rp;
        }
        if (st.pending.size() >= st.cfg.pending_max && !st.pending.count(hash)) {
          rp.deliver(make_error(errc::overloaded, "auth_overloaded",
                                "too many tokens waiting for verification; retry shortly"));
          return rp;
        }
        auto& waiting = st.pending[hash];
        waiting.push_back(rp);
        if (waiting.size() == 1)
          lookup(self, hash);
        return rp;
      },
      [self](revoke_atom, std::string& id) -> bool {
        bool was = self->state.cfg.cache->remove_id(id);
        m().cached.set(static_cast<double>(self->state.cfg.cache->size()));
        return was;
      },
      [self](tick_atom) { refresh(self); },
      [self](status_atom) -> std::string {
        auto& st = self->state;
        return "{\"cached_tokens\":" + std::to_string(st.cfg.cache->size()) +
               ",\"refreshes\":" + std::to_string(st.refreshes) +
               ",\"refresh_failures\":" + std::to_string(st.refresh_failures) +
               ",\"lookups\":" + std::to_string(st.lookups) + ",\"last_refresh\":" +
               (st.last_refresh ? "\"" + format_rfc3339(st.last_refresh) + "\"" : "null") + "}";
      },
  };
}

auth_actor spawn_auth_actor(caf::actor_system& sys, auth_config cfg,
                            const db_worker_config& worker) {
  auto w = sys.spawn<caf::detached>(db_worker, worker);
  return sys.spawn(auth, std::move(cfg), w);
}

auth_actor spawn_auth_actor(caf::actor_system& sys, const config::settings& s,
                            std::shared_ptr<auth::token_cache> cache) {
  auth_config ac;
  ac.cache = std::move(cache);
  ac.refresh_interval = s.auth_refresh_interval;
  ac.lookup_timeout = std::min(s.db_request_deadline, std::chrono::milliseconds(2000));
  return spawn_auth_actor(sys, std::move(ac), worker_config(s, "auth", s.db_statement_timeout));
}

} // namespace joule::db
