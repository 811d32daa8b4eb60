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
    auto group = std::make_shared<std::vector<telemetry_writer_state::queued>>();
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
      std::vector<const std::vector<std::string>*> allowed;
      for (auto& b : *group) {
        batches.push_back(&b.rows);
        allowed.push_back(&b.households);
      }
      *outcomes = write_batches(s, batches, allowed);
      return std::any{};
    };
    st.busy[w] = true;
    auto started = std::chrono::steady_clock::now();
    // Each batch's own outcome when the transaction committed, the shared error otherwise.
    auto reply_all = [group, outcomes, started](self_ptr self, const caf::error* err) {
      if (!err) {
        m().commits.inc();
        m().batch.observe(
            std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
        ++self->state.commits;
      }
      std::size_t written = 0;
      for (size_t i = 0; i < group->size(); ++i) {
        auto& rp = (*group)[i].promise;
        if (err) {
          rp.deliver(*err);
        } else if ((*outcomes)[i].error) {
          rp.deliver(make_error(*(*outcomes)[i].error));
        } else {
          written += (*outcomes)[i].accepted;
          rp.deliver(ingest_receipt{(*outcomes)[i].accepted});
        }
      }
      self->state.rows_written += written;
      m().rows.inc(written);
    };
    self->request(st.workers[w], caf::infinite, std::move(job))
        .then(
            [self, w, reply_all](db_done&) {
              self->state.busy[w] = false;
              reply_all(self, nullptr);
              dispatch(self);
            },
            [self, w, reply_all](caf::error& e) {
              self->state.busy[w] = false;
              if (e.category() != caf::atom("joule"))
                e = make_error(errc::unavailable, "db_unavailable", "the writer failed; retry");
              reply_all(self, &e);
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
      [self](ingest_batch& b) -> caf::typed_response_promise<ingest_receipt> {
        auto& st = self->state;
        auto rp = self->make_response_promise<ingest_receipt>();
        if (st.pending_rows + b.rows.size() > st.cfg.max_pending_rows) {
          ++st.rejected_overload;
          m().overloaded.inc();
          rp.deliver(make_error(errc::overloaded, "overloaded",
                                "the writer is saturated; retry shortly"));
          return rp;
        }
        st.pending_rows += b.rows.size();
        m().pending.set(static_cast<double>(st.pending_rows));
        st.pending.push_back({std::move(b.rows), rp, std::move(b.households)});
        dispatch(self);
        return rp;
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
