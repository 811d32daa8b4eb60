#include "db/refresh_actor.hpp"

#include <algorithm>
#include <cstdio>

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

double seconds(std::int64_t us) { return static_cast<double>(us) / 1e6; }

std::string fixed(double v, int digits = 1) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

void record_catchup(const std::string& rollup, const catchup_progress& c) {
  auto lbl = metrics::label("rollup", rollup);
  auto& reg = metrics::global();
  reg.get_gauge("joule_refresh_catchup_active",
                "1 while the rollup catches up on a backlog (first start, after downtime)", lbl)
      .set(c.active ? 1 : 0);
  reg.get_gauge("joule_refresh_catchup_remaining_seconds",
                "Time span of data the rollup still has to materialise (0: caught up)", lbl)
      .set(seconds(c.remaining_us));
  reg.get_gauge("joule_refresh_catchup_rows_per_second",
                "Rows aggregated per wall second by the current or last catch-up", lbl)
      .set(c.rows_per_s());
  reg.get_gauge("joule_refresh_catchup_eta_seconds",
                "Estimated seconds until the catch-up is done (-1: not known yet)", lbl)
      .set(c.eta_s());
}

std::string catchup_json(const catchup_progress& c) {
  return "{\"active\":" + std::string(c.active ? "true" : "false") +
         ",\"batches\":" + std::to_string(c.batches) +
         ",\"done_seconds\":" + fixed(seconds(c.materialised_us)) +
         ",\"remaining_seconds\":" + fixed(seconds(c.remaining_us)) +
         ",\"rows\":" + std::to_string(c.source_rows) +
         ",\"rows_per_second\":" + fixed(c.rows_per_s(), 0) +
         ",\"elapsed_seconds\":" + fixed(c.elapsed_s) + ",\"eta_seconds\":" + fixed(c.eta_s()) +
         "}";
}

// One line per catch-up batch at most every few seconds, and one when it is done.
void log_catchup(self_ptr self, bool done) {
  auto& st = self->state;
  auto& c = st.catchup;
  auto now = std::chrono::steady_clock::now();
  if (!done && now - st.last_log < std::chrono::seconds(5))
    return;
  st.last_log = now;
  if (done) {
    log(log_level::info, "refresh",
        st.cfg.rollup + " caught up: " + fixed(seconds(c.materialised_us) / 3600, 2) +
            " h of data, " + std::to_string(c.source_rows) + " rows in " + fixed(c.elapsed_s) +
            " s (" + fixed(c.rows_per_s(), 0) + " rows/s, " + std::to_string(c.batches) +
            " batches)");
    return;
  }
  log(log_level::info, "refresh",
      st.cfg.rollup + " catching up: " + fixed(seconds(c.materialised_us) / 3600, 2) +
          " h done, " + fixed(seconds(c.remaining_us) / 3600, 2) + " h remaining, watermark " +
          format_rfc3339(st.last.watermark_after) + ", " + fixed(c.rows_per_s(), 0) +
          " rows/s, ETA " + (c.eta_s() < 0 ? std::string("unknown") : fixed(c.eta_s(), 0) + " s"));
}

// After a catch-up batch of `busy`, the pause that keeps the batches at catchup_duty % of
// wall time (reads keep the rest of the machine).
std::chrono::milliseconds pause_after(std::chrono::steady_clock::duration busy, int duty) {
  if (duty >= 100)
    return std::chrono::milliseconds{0};
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(busy).count();
  return std::chrono::milliseconds{ms * (100 - duty) / std::max(duty, 1)};
}

void run_cycle(self_ptr self) {
  auto& st = self->state;
  if (st.running)
    return;
  // A cycle that may catch up on a backlog runs in a slot of the process's catch-up gate
  // (coarse rollups first); a rollup without one asks again shortly (its normal cycles never
  // wait).
  if (st.catching_up && st.cfg.gate && !st.slot) {
    const auto* spec = find_rollup(st.cfg.rollup);
    st.slot = st.cfg.gate->try_take(st.queued, spec ? spec->width : 0);
    if (!st.slot) {
      self->delayed_send(self, std::chrono::milliseconds(200), tick_atom::value);
      return;
    }
  }
  if (st.catching_up && !st.catchup.active) {
    st.catchup = catchup_progress{};
    st.catchup.active = true;
    st.catchup.started = std::chrono::steady_clock::now();
  }
  st.running = true;
  auto cycle_started = std::chrono::steady_clock::now();
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
          [self, report, cycle_started](db_done&) {
            auto& st = self->state;
            st.running = false;
            ++st.cycles;
            st.last = *report;
            auto busy = std::chrono::steady_clock::now() - cycle_started;
            auto& c = st.catchup;
            if (c.active) {
              ++c.batches;
              c.materialised_us += report->materialised_us;
              c.source_rows += report->source_rows;
              c.remaining_us = report->backlog_us;
              c.elapsed_s = std::chrono::duration<double>(std::chrono::steady_clock::now() -
                                                          c.started)
                                .count();
            }
            c.remaining_us = report->backlog_us;
            st.catching_up = report->more_pending;
            if (!st.catching_up) {
              st.slot.reset();
              if (c.active) {
                c.active = false;
                // Only a real backlog is worth a line (the first cycle of a caught-up rollup
                // is a catch-up of nothing).
                if (c.batches > 1)
                  log_catchup(self, true);
              }
            } else {
              log_catchup(self, false);
            }
            record_catchup(st.cfg.rollup, c);
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
            schedule(self, report->more_pending ? pause_after(busy, st.cfg.catchup_duty)
                                                : st.cfg.schedule_interval);
          },
          [self](caf::error& err) {
            auto& st = self->state;
            st.running = false;
            st.slot.reset();  // others may catch up meanwhile; this one asks again
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
  // First cycle right away: at first start this materialises existing history. With a
  // catch-up gate, every rollup of the process queues first and the first cycles start a
  // moment later, so the slot goes to the coarsest rollup, not the first one spawned.
  if (auto& gate = self->state.cfg.gate) {
    const auto* spec = find_rollup(self->state.cfg.rollup);
    gate->enqueue(self->state.queued, spec ? spec->width : 0);
    self->delayed_send(self, std::chrono::milliseconds(100), tick_atom::value);
  } else {
    self->send(self, tick_atom::value);
  }
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
               ",\"invalidations_pending\":" + std::to_string(r.invalidations_kept) +
               ",\"catchup\":" + catchup_json(st.catchup) + "}";
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
  // One gate per process: every refresh actor spawned here shares its slots.
  static const auto gate = std::make_shared<catchup_gate>(s.refresh_catchup_parallel);
  rc.gate = gate;
  rc.catchup_duty = s.refresh_catchup_duty;
  auto worker = sys.spawn<caf::detached>(
      db_worker, worker_config(s, "refresh." + name, std::chrono::milliseconds{0}));
  return sys.spawn(refresh, rc, worker);
}

} // namespace joule::db
