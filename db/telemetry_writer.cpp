#include "db/telemetry_writer.hpp"

#include "core/log.hpp"
#include "core/metrics.hpp"
#include "db/db_worker.hpp"
#include "db/telemetry_store.hpp"

namespace joule::db {
namespace {

using self_ptr = telemetry_writer_actor::stateful_pointer<telemetry_writer_state>;

struct writer_metrics {
  metrics::counter& rows = metrics::global().get_counter(
      "joule_ingest_rows_total", "Readings committed through POST /telemetry");
  metrics::counter& commits = metrics::global().get_counter(
      "joule_ingest_commits_total", "Group commits (one transaction, several batches)");
  metrics::counter& overloaded = metrics::global().get_counter(
      "joule_ingest_rejected_total", "Batches refused", metrics::label("reason", "overloaded"));
  metrics::gauge& pending = metrics::global().get_gauge(
      "joule_ingest_pending_rows", "Readings waiting for a writer connection");
  metrics::histogram& batch = metrics::global().get_histogram(
      "joule_ingest_commit_seconds", "Duration of one group commit");
};

writer_metrics& m() {
  static writer_metrics instance;
  return instance;
}

void dispatch(self_ptr self) {
  auto& st = self->state;
  for (size_t w = 0; w < st.workers.size() && !st.pending.empty(); ++w) {
    if (st.busy[w])
      continue;
    // Take whole batches up to the per-commit bound (always at least one).
    auto group = std::make_shared<std::vector<ingest_batch>>();
    std::size_t rows = 0;
    while (!st.pending.empty() &&
           (group->empty() || rows + st.pending.front().rows.size() <= st.cfg.max_rows_per_commit)) {
      rows += st.pending.front().rows.size();
      group->push_back(std::move(st.pending.front()));
      st.pending.pop_front();
    }
    st.pending_rows -= rows;
    m().pending.set(static_cast<double>(st.pending_rows));
    auto outcomes = std::make_shared<std::vector<batch_outcome>>();
    db_job job;
    job.label = "ingest";
    job.timeout = std::chrono::seconds(30);
    job.retry_on_disconnect = false;  // a commit may have happened: let the client decide
    job.run = [group, outcomes](session& s) {
      std::vector<const std::vector<telemetry_row>*> batches;
      for (auto& b : *group)
        batches.push_back(&b.rows);
      *outcomes = write_batches(s, batches);
      return db_answer{};
    };
    st.busy[w] = true;
    auto started = std::chrono::steady_clock::now();
    auto reply_all = [group, outcomes, rows, started](self_ptr self, const db_answer& a) {
      if (a.status == 200) {
        m().commits.inc();
        m().batch.observe(
            std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
        ++self->state.commits;
      }
      std::size_t written = 0;
      for (size_t i = 0; i < group->size(); ++i) {
        db_answer r;
        if (a.status != 200) {
          r = a;
        } else {
          r.status = (*outcomes)[i].status;
          r.body = (*outcomes)[i].body;
          if (r.status == 202)
            written += (*group)[i].rows.size();
        }
        (*group)[i].reply(std::move(r));
      }
      self->state.rows_written += written;
      m().rows.inc(written);
      (void)rows;
    };
    self->request(st.workers[w], caf::infinite, std::move(job))
        .then(
            [self, w, reply_all](db_answer& a) {
              self->state.busy[w] = false;
              reply_all(self, a);
              dispatch(self);
            },
            [self, w, reply_all](caf::error& e) {
              self->state.busy[w] = false;
              reply_all(self, error_answer(503, "db_unavailable",
                                           "the writer failed: " + self->system().render(e)));
              dispatch(self);
            });
  }
}

} // namespace

telemetry_writer_actor::behavior_type telemetry_writer(self_ptr self, writer_config cfg,
                                                       std::function<db_worker_actor(int)> spawn_worker,
                                                       int workers) {
  auto& st = self->state;
  st.cfg = cfg;
  m();  // register the metrics now, so /metrics lists them from the start
  for (int i = 0; i < workers; ++i) {
    st.workers.push_back(spawn_worker(i));
    st.busy.push_back(false);
    self->link_to(st.workers.back());
  }
  return {
      [self](ingest_batch& b) {
        auto& st = self->state;
        if (st.pending_rows + b.rows.size() > st.cfg.max_pending_rows) {
          ++st.rejected_overload;
          m().overloaded.inc();
          b.reply(error_answer(503, "overloaded", "the writer is saturated; retry shortly"));
          return;
        }
        st.pending_rows += b.rows.size();
        m().pending.set(static_cast<double>(st.pending_rows));
        st.pending.push_back(std::move(b));
        dispatch(self);
      },
      [self](status_atom) -> std::string {
        auto& st = self->state;
        return "{\"pending_rows\":" + std::to_string(st.pending_rows) + ",\"commits\":" +
               std::to_string(st.commits) + ",\"rows_written\":" +
               std::to_string(st.rows_written) + ",\"rejected_overload\":" +
               std::to_string(st.rejected_overload) + "}";
      },
  };
}

} // namespace joule::db
