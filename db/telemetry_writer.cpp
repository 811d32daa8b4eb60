#include "db/telemetry_writer.hpp"

#include <caf/actor_system.hpp>

#include "core/log.hpp"
#include "core/metrics.hpp"
#include "db/db_worker.hpp"
#include "db/session.hpp"
#include "db/telemetry_store.hpp"

namespace joule::db {
namespace {

using self_ptr = telemetry_writer_actor::stateful_pointer<telemetry_writer_state>;

// A transaction is given its batches' deadline minus this margin for the commit round trip;
// a batch with less time left than min_commit_time is refused instead of started.
constexpr auto commit_margin = std::chrono::milliseconds(250);
constexpr auto min_commit_time = std::chrono::milliseconds(500);

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
  for (auto w = st.workers.idle(); w && !st.pending.empty(); w = st.workers.idle()) {
    // Take whole batches up to the per-commit bound (always at least one).
    auto group = std::make_shared<std::vector<telemetry_writer_state::queued>>();
    std::size_t rows = 0;
    auto now = std::chrono::steady_clock::now();
    while (!st.pending.empty() &&
           (group->empty() ||
            rows + st.pending.front().batch.rows.size() <= st.cfg.max_rows_per_commit)) {
      auto& next = st.pending.front();
      st.pending_rows -= next.batch.rows.size();
      // Its client has given up (or is about to): answering now beats writing rows the
      // client was told failed.
      if (next.batch.deadline <= now + min_commit_time) {
        next.promise.deliver(make_error(errc::timeout, "ingest_timeout",
                                        "the batch waited too long for a writer; nothing was "
                                        "stored, retry"));
        st.pending.pop_front();
        continue;
      }
      rows += next.batch.rows.size();
      group->push_back(std::move(next));
      st.pending.pop_front();
    }
    if (group->empty()) {
      m().pending.set(static_cast<double>(st.pending_rows));
      continue;
    }
    m().pending.set(static_cast<double>(st.pending_rows));
    auto outcomes = std::make_shared<std::vector<batch_outcome>>();
    db_job job;
    job.label = "ingest";
    // The transaction must end before the earliest client deadline of the group.
    auto earliest = std::chrono::steady_clock::time_point::max();
    for (auto& q : *group)
      earliest = std::min(earliest, q.batch.deadline);
    write_options opt;
    opt.idempotency_ttl_us = st.cfg.idempotency_ttl_us;
    if (earliest != std::chrono::steady_clock::time_point::max())
      opt.deadline = std::max(std::chrono::milliseconds{1},
                              std::chrono::duration_cast<std::chrono::milliseconds>(
                                  earliest - now - commit_margin));
    job.timeout = opt.deadline.count() > 0 ? opt.deadline + std::chrono::seconds(1)
                                           : std::chrono::seconds(30);
    job.retry_on_disconnect = false;  // a commit may have happened: let the client decide
    job.run = [group, outcomes, opt](session& s) {
      std::vector<batch_ref> batches;
      for (auto& q : *group)
        batches.push_back({&q.batch.rows, q.batch.owner, q.batch.idempotency_key,
                           q.batch.body_sha256, &q.batch.households});
      *outcomes = write_batches(s, batches, opt);
      return std::any{};
    };
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
    auto worker = st.workers.acquire(*w);
    self->request(worker, caf::infinite, std::move(job))
        .then(
            [self, w = *w, worker, reply_all](db_done&) {
              self->state.workers.release(w, worker);
              reply_all(self, nullptr);
              dispatch(self);
            },
            [self, w = *w, worker, reply_all](caf::error& e) {
              self->state.workers.release(w, worker);
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
  for (int i = 0; i < workers; ++i)
    self->link_to(st.workers.all()[st.workers.add(spawn_worker(i))]);
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
        st.pending.push_back({std::move(b), rp});
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

telemetry_writer_actor spawn_telemetry_writer(caf::actor_system& sys, const config::settings& s) {
  writer_config wc;
  wc.max_pending_rows = static_cast<std::size_t>(s.ingest_max_pending_rows);
  wc.max_rows_per_commit = static_cast<std::size_t>(s.ingest_max_rows_per_commit);
  wc.idempotency_ttl_us = s.ingest_idempotency_ttl.count() * 1000;
  auto cfg = worker_config(s, "ingest", std::chrono::milliseconds{30000});
  auto spawn_worker = [&sys, cfg](int) { return sys.spawn<caf::detached>(db_worker, cfg); };
  return sys.spawn(telemetry_writer, wc, spawn_worker, s.ingest_writers);
}

} // namespace joule::db
