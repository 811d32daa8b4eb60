#include "db/refresh_actor.hpp"

#include <caf/actor_system.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "db/db_worker.hpp"
#include "db/session.hpp"

#include "core/log.hpp"
#include "core/metrics.hpp"
#include "core/timefmt.hpp"

namespace joule::db {
namespace {

using self_ptr = refresh_actor::stateful_pointer<refresh_state>;

void record(const std::string& rollup, const refresh_report& r) {
  auto lbl = metrics::label("rollup", rollup);
  auto& reg = metrics::global();
  if (r.skipped) {
    reg.get_counter("joule_rollup_refreshes_total", "Refresh cycles by result",
                    lbl + "," + metrics::label("result", "skipped"))
        .inc();
    return;
  }
  reg.get_counter("joule_rollup_refreshes_total", "Refresh cycles by result",
                  lbl + "," + metrics::label("result", "ok"))
      .inc();
  reg.get_histogram("joule_rollup_refresh_duration_seconds", "Duration of one refresh cycle",
                    lbl)
      .observe(r.duration_ms / 1000.0);
  reg.get_gauge("joule_rollup_lag_seconds",
                "How far the watermark trails the database clock (newer data is read raw)", lbl)
      .set(static_cast<double>(r.db_now - r.watermark_after) / 1e6);
  reg.get_gauge("joule_rollup_watermark_timestamp_seconds", "Watermark as Unix time", lbl)
      .set(static_cast<double>(r.watermark_after) / 1e6);
  reg.get_gauge("joule_rollup_invalidations_pending",
                "Late-write ranges older than start_offset waiting for a manual refresh", lbl)
      .set(r.invalidations_kept);
  reg.get_counter("joule_rollup_rows_written_total", "Rollup rows (re)materialised", lbl)
      .inc(static_cast<std::uint64_t>(r.rows_written));
}

void schedule(self_ptr self, std::chrono::milliseconds after) {
  self->delayed_send(self, after, tick_atom::value);
}

void run_cycle(self_ptr self) {
  auto& st = self->state;
  if (st.running)
    return;
  st.running = true;
  auto report = std::make_shared<refresh_report>();
  const auto* spec = find_rollup(st.cfg.rollup);
  db_job job;
  job.label = "refresh." + st.cfg.rollup;
  job.timeout = st.cfg.job_timeout;
  job.retry_on_disconnect = true;  // a refresh transaction is atomic: safe to rerun
  job.run = [spec, policy = st.cfg.policy, report](session& s) {
    *report = refresh_cycle(s, *spec, policy);
    return std::any{};
  };
  self->request(st.worker, caf::infinite, std::move(job))
      .then(
          [self, report](db_done&) {
            auto& st = self->state;
            st.running = false;
            ++st.cycles;
            st.last = *report;
            if (report->skipped)
              ++st.skipped;
            if (st.cfg.board && report->watermark_after != 0)
              st.cfg.board->raise(st.cfg.rollup, report->watermark_after);
            record(st.cfg.rollup, *report);
            if (report->rows_written > 0)
              log(log_level::debug, "refresh",
                  st.cfg.rollup + ": " + std::to_string(report->rows_written) + " rows, " +
                      std::to_string(report->duration_ms) + " ms, watermark " +
                      format_rfc3339(report->watermark_after));
            // New or late data was cut at max_batch: continue at once instead of a full
            // interval (each batch is its own bounded transaction).
            schedule(self, report->more_pending ? std::chrono::milliseconds{0}
                                                : st.cfg.schedule_interval);
          },
          [self](caf::error& err) {
            auto& st = self->state;
            st.running = false;
            ++st.cycles;
            ++st.failures;
            metrics::global()
                .get_counter("joule_rollup_refreshes_total", "Refresh cycles by result",
                             metrics::label("rollup", st.cfg.rollup) + "," +
                                 metrics::label("result", "error"))
                .inc();
            log(log_level::warn, "refresh",
                st.cfg.rollup + " failed: " + failure_of(err).message);
            schedule(self, st.cfg.schedule_interval);
          });
}

} // namespace

refresh_actor::behavior_type refresh(self_ptr self, refresh_config cfg, db_worker_actor worker) {
  self->state.cfg = std::move(cfg);
  self->state.worker = std::move(worker);
  self->link_to(self->state.worker);
  // First cycle right away: at first start this materialises existing history.
  self->send(self, tick_atom::value);
  return {
      [self](tick_atom) { run_cycle(self); },
      [self](status_atom) -> std::string {
        auto& st = self->state;
        auto& r = st.last;
        return "{\"rollup\":\"" + st.cfg.rollup + "\",\"cycles\":" + std::to_string(st.cycles) +
               ",\"failures\":" + std::to_string(st.failures) +
               ",\"skipped\":" + std::to_string(st.skipped) + ",\"watermark\":" +
               (r.watermark_after ? "\"" + format_rfc3339(r.watermark_after) + "\"" : "null") +
               ",\"last_duration_ms\":" + std::to_string(r.duration_ms) +
               ",\"last_rows_written\":" + std::to_string(r.rows_written) +
               ",\"invalidations_pending\":" + std::to_string(r.invalidations_kept) + "}";
      },
  };
}

refresh_actor spawn_refresh(caf::actor_system& sys, const config::settings& s,
                            const std::string& name, std::shared_ptr<watermark_board> board) {
  auto us = [](std::chrono::milliseconds d) { return d.count() * 1000; };
  auto p = s.refresh_policies.at(name);
  refresh_config rc;
  rc.rollup = name;
  rc.policy = {us(p.start_offset), us(p.end_offset), us(s.refresh_max_batch)};
  rc.schedule_interval = p.schedule_interval;
  rc.board = std::move(board);
  auto worker = sys.spawn<caf::detached>(
      db_worker, worker_config(s, "refresh." + name, std::chrono::milliseconds{0}));
  return sys.spawn(refresh, rc, worker);
}

} // namespace joule::db
