#include "db/partition_actor.hpp"

#include <caf/actor_system.hpp>

#include "db/db_worker.hpp"
#include "db/session.hpp"

#include <caf/typed_event_based_actor.hpp>

#include "core/log.hpp"
#include "db/partitions.hpp"
#include "db/telemetry_store.hpp"

namespace joule::db {

partition_actor::behavior_type
partition_keeper(partition_actor::stateful_pointer<partition_state> self, partition_config cfg,
                 db_worker_actor worker) {
  self->state.cfg = cfg;
  self->state.worker = std::move(worker);
  self->link_to(self->state.worker);
  self->send(self, tick_atom::value);
  return {
      [self](tick_atom) {
        auto cfg = self->state.cfg;
        db_job job;
        job.label = "partitions";
        job.timeout = std::chrono::minutes(10);
        auto created = std::make_shared<int>(0);
        job.run = [cfg, created](session& s) {
          auto rep = ensure_partitions(s, cfg.interval_us, cfg.ahead, cfg.behind);
          if (cfg.idempotency_ttl_us > 0)
            expire_idempotency_keys(s, cfg.idempotency_ttl_us);
          *created = rep.created;
          if (rep.created > 0)
            log(log_level::info, "partitions",
                "created " + std::to_string(rep.created) + " partitions, moved " +
                    std::to_string(rep.rows_moved) + " rows out of telemetry_default");
          if (rep.synced > 0)
            log(log_level::info, "partitions",
                std::to_string(rep.synced) + " partitions dropped, detached or attached outside "
                "Joule: their ranges are logged for the rollups");
          return std::any{};
        };
        self->request(self->state.worker, caf::infinite, std::move(job))
            .then(
                [self, created](db_done&) {
                  ++self->state.checks;
                  self->state.created += static_cast<std::uint64_t>(*created);
                  self->delayed_send(self, self->state.cfg.check_interval, tick_atom::value);
                },
                [self](caf::error& err) {
                  ++self->state.checks;
                  ++self->state.failures;
                  log(log_level::warn, "partitions", "check failed: " + failure_of(err).message);
                  self->delayed_send(self, self->state.cfg.check_interval, tick_atom::value);
                });
      },
      [self](status_atom) -> std::string {
        auto& st = self->state;
        return "{\"checks\":" + std::to_string(st.checks) + ",\"created\":" +
               std::to_string(st.created) + ",\"failures\":" + std::to_string(st.failures) + "}";
      },
  };
}

partition_actor spawn_partition_keeper(caf::actor_system& sys, const config::settings& s) {
  partition_config pc;
  pc.interval_us = s.partition_interval.count() * 1000;
  pc.ahead = s.partitions_ahead;
  pc.behind = s.partitions_behind;
  pc.check_interval = s.partition_check_interval;
  pc.idempotency_ttl_us = s.ingest_idempotency_ttl.count() * 1000;
  auto worker = sys.spawn<caf::detached>(
      db_worker, worker_config(s, "partitions", std::chrono::milliseconds{0}));
  return sys.spawn(partition_keeper, pc, worker);
}

} // namespace joule::db
