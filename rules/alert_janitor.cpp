#include "rules/alert_janitor.hpp"

#include <memory>

#include <caf/typed_event_based_actor.hpp>

#include "core/log.hpp"
#include "core/metrics.hpp"
#include "rules/rule_sql.hpp"

namespace joule::rules {
namespace {

using self_ptr = alert_janitor_actor::stateful_pointer<alert_janitor_state>;

void run(self_ptr self) {
  auto& st = self->state;
  if (st.busy)
    return;
  auto pool = st.pool();
  if (!pool)
    return;
  const auto now = std::chrono::steady_clock::now();
  const bool cleanup = now >= st.next_cleanup;
  if (cleanup)
    st.next_cleanup = now + st.cfg.cleanup_interval;
  // A full pass when told (a silence deleted, a rule changed here), after a capped batch, and
  // every full_interval (what another instance changed); otherwise only ended silences count.
  const bool full = st.full_next || !st.last_check || now >= st.next_full;
  if (full)
    st.next_full = now + st.cfg.full_interval;
  st.full_next = false;
  struct result {
    release_result release;
    std::int64_t deleted = 0;
  };
  auto out = std::make_shared<result>();
  db_job job;
  job.label = "alerts.janitor";
  job.timeout = st.cfg.job_timeout;
  job.run = [out, cleanup, retention = st.cfg.retention.count(), batch = st.cfg.batch,
             since = st.last_check, full, limit = st.cfg.release_batch](db::session& s) {
    out->release = release_silenced(s, since, full, limit);
    if (cleanup) {
      // Batches until a short one: one long DELETE would hold its locks for long.
      for (int i = 0; i < 100; ++i) {
        auto n = delete_expired(s, retention, batch);
        out->deleted += n;
        if (n < batch)
          break;
      }
    }
    return std::any{};
  };
  st.busy = true;
  self->request(pool, job.timeout + std::chrono::milliseconds(500), std::move(job))
      .then(
          [self, out](db_done&) {
            auto& st = self->state;
            st.busy = false;
            auto& rel = out->release;
            st.last_check = rel.checked_at;
            st.released += static_cast<std::uint64_t>(rel.released);
            if (rel.ran)
              ++st.release_passes;
            if (rel.released >= st.cfg.release_batch)
              st.full_next = true;  // more may be waiting
            st.deleted += static_cast<std::uint64_t>(out->deleted);
            if (out->deleted > 0) {
              metrics::global()
                  .get_counter("joule_alert_notifications_deleted_total",
                               "Notifications and silences deleted after alerts.retention")
                  .inc(static_cast<std::uint64_t>(out->deleted));
              log(log_level::info, "alerts",
                  "retention: deleted " + std::to_string(out->deleted) + " old rows");
            }
            if (rel.released > 0 && st.nudge)
              st.nudge();
          },
          [self](caf::error& err) {
            auto& st = self->state;
            st.busy = false;
            ++st.failures;
            log(log_level::warn, "alerts", "alert housekeeping failed: " + failure_of(err).message);
          });
}

} // namespace

alert_janitor_actor::behavior_type alert_janitor(self_ptr self, alert_janitor_config cfg,
                                                 std::function<db_pool_actor()> pool,
                                                 std::function<void()> nudge) {
  self->state.cfg = cfg;
  self->state.pool = std::move(pool);
  self->state.nudge = std::move(nudge);
  self->send(self, tick_atom::value);
  return {
      [self](tick_atom) {
        self->delayed_send(self, self->state.cfg.release_interval, tick_atom::value);
        run(self);
      },
      [self](nudge_atom) {
        self->state.full_next = true;
        run(self);
      },
      [self](status_atom) -> std::string {
        auto& st = self->state;
        return "{\"released\":" + std::to_string(st.released) +
               ",\"release_passes\":" + std::to_string(st.release_passes) +
               ",\"deleted\":" + std::to_string(st.deleted) +
               ",\"failures\":" + std::to_string(st.failures) + "}";
      },
  };
}

} // namespace joule::rules
