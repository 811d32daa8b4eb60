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
  const bool cleanup = std::chrono::steady_clock::now() >= st.next_cleanup;
  if (cleanup)
    st.next_cleanup = std::chrono::steady_clock::now() + st.cfg.cleanup_interval;
  struct result {
    int released = 0;
    std::int64_t deleted = 0;
  };
  auto out = std::make_shared<result>();
  db_job job;
  job.label = "alerts.janitor";
  job.timeout = st.cfg.job_timeout;
  job.run = [out, cleanup, retention = st.cfg.retention.count(), batch = st.cfg.batch](
                db::session& s) {
    out->released = release_silenced(s);
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
            st.released += static_cast<std::uint64_t>(out->released);
            st.deleted += static_cast<std::uint64_t>(out->deleted);
            if (out->deleted > 0) {
              metrics::global()
                  .get_counter("joule_alert_notifications_deleted_total",
                               "Notifications and silences deleted after alerts.retention")
                  .inc(static_cast<std::uint64_t>(out->deleted));
              log(log_level::info, "alerts",
                  "retention: deleted " + std::to_string(out->deleted) + " old rows");
            }
            if (out->released > 0 && st.nudge)
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
      [self](status_atom) -> std::string {
        auto& st = self->state;
        return "{\"released\":" + std::to_string(st.released) +
               ",\"deleted\":" + std::to_string(st.deleted) +
               ",\"failures\":" + std::to_string(st.failures) + "}";
      },
  };
}

} // namespace joule::rules
