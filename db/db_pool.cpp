#include "db/db_pool.hpp"

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "core/log.hpp"
#include "core/metrics.hpp"
#include "db/db_worker.hpp"
#include "db/session.hpp"
#include "db/watermarks.hpp"

namespace joule::db {
namespace {

using pool_ptr = db_pool_actor::stateful_pointer<db_pool_state>;

struct pool_metrics {
  metrics::gauge& queue_depth = metrics::global().get_gauge(
      "joule_db_pool_queue_depth", "Jobs waiting for a DB worker");
  metrics::gauge& in_flight =
      metrics::global().get_gauge("joule_db_pool_in_flight", "Jobs running on DB workers");
  metrics::counter& timeouts = metrics::global().get_counter(
      "joule_db_pool_timeouts_total", "Jobs answered 504 because their deadline passed");
  metrics::counter& rejected = metrics::global().get_counter(
      "joule_db_pool_rejected_total", "Jobs answered 503 because the queue was full");
  // One per job a worker runs (an analytics answer is one or two statements in one round
  // trip; other jobs a few): the denominator of "database queries per request".
  metrics::counter& queries = metrics::global().get_counter(
      "joule_db_queries_total", "Statements sent to PostgreSQL, by source",
      metrics::label("source", "pool"));
  metrics::counter& restarts = metrics::global().get_counter(
      "joule_actor_restarts_total", "Actors restarted by their supervisor",
      metrics::label("actor", "db_worker"));
  // Analytics reads (jobs a standby may serve) by the server that answered them.
  metrics::counter& reads_primary = metrics::global().get_counter(
      "joule_db_reads_total", "Analytics reads answered, by the server that served them",
      metrics::label("target", "primary"));
  metrics::counter& reads_standby = metrics::global().get_counter(
      "joule_db_reads_total", "Analytics reads answered, by the server that served them",
      metrics::label("target", "standby"));
  metrics::counter& fallbacks = metrics::global().get_counter(
      "joule_db_standby_fallbacks_total",
      "Standby reads run again on the primary (standby unreachable or behind for that read)");
};

pool_metrics& m() {
  static pool_metrics instance;
  return instance;
}

void update_gauges(db_pool_state& st) {
  m().queue_depth.set(static_cast<double>(st.waiting));
  m().in_flight.set(static_cast<double>(st.workers.busy_count() + st.readers.busy_count()));
}

// A standby job that failed unavailable (standby unreachable, or standby_behind: not caught
// up enough for this read) runs again on the primary, ahead of newer jobs; nothing else does.
bool fall_back(pool_ptr self, std::uint64_t id, const caf::error& err) {
  auto& st = self->state;
  auto it = st.jobs.find(id);
  if (it == st.jobs.end() || it->second.answered || !it->second.standby ||
      err.category() != caf::atom("joule") || failure_of(err).code != errc::unavailable)
    return false;
  it->second.standby = false;
  it->second.queued = true;
  ++st.waiting;
  st.queue.push_front(id);
  m().fallbacks.inc();
  return true;
}

void count_read(const db_pool_state::pending& p, bool standby) {
  if (p.read)
    (standby ? m().reads_standby : m().reads_primary).inc();
}

void finish(pool_ptr self, std::uint64_t id, caf::expected<db_done> outcome) {
  auto& st = self->state;
  auto it = st.jobs.find(id);
  if (it == st.jobs.end())
    return;
  if (!it->second.answered)
    it->second.complete(std::move(outcome));
  st.jobs.erase(it);
}

void dispatch(pool_ptr self);

// Hands queued jobs to idle workers of one set: the primary's (`standby` false) or the read
// workers on the standby (which run the job's run_on_standby).
void dispatch_set(pool_ptr self, bool standby) {
  auto& st = self->state;
  auto& workers = standby ? st.readers : st.workers;
  auto& queue = standby ? st.read_queue : st.queue;
  for (auto w = workers.idle(); w && !queue.empty(); w = workers.idle()) {
    // Skip jobs that timed out while queued.
    while (!queue.empty() && st.jobs.count(queue.front()) == 0)
      queue.pop_front();
    if (queue.empty())
      break;
    auto id = queue.front();
    queue.pop_front();
    auto& p = st.jobs.at(id);
    p.queued = false;
    --st.waiting;
    auto remaining = std::chrono::duration_cast<std::chrono::milliseconds>(
        p.deadline - self->clock().now());
    db_job job = p.job;
    if (standby)
      job.run = job.run_on_standby;
    job.timeout = std::max(std::chrono::milliseconds{1}, remaining);
    m().queries.inc();
    auto worker = workers.acquire(*w);
    self->request(worker, caf::infinite, std::move(job))
        .then(
            [self, w = *w, id, worker, standby](db_done& d) {
              auto& st = self->state;
              (standby ? st.readers : st.workers).release(w, worker);
              if (auto it = st.jobs.find(id); it != st.jobs.end())
                count_read(it->second, standby);
              finish(self, id, std::move(d));
              dispatch(self);
            },
            [self, w = *w, id, worker, standby](caf::error& err) {
              auto& st = self->state;
              (standby ? st.readers : st.workers).release(w, worker);
              // A domain or database error from the job, or the worker died under it.
              if (err.category() != caf::atom("joule")) {
                log(log_level::warn, "db_pool", "worker failed: " + self->system().render(err));
                err = make_error(errc::unavailable, "db_unavailable",
                                 "a database worker failed; retry");
              }
              if (!fall_back(self, id, err)) {
                if (auto it = st.jobs.find(id);
                    it != st.jobs.end() && err.category() == caf::atom("joule") &&
                    failure_of(err).code != errc::unavailable &&
                    failure_of(err).code != errc::timeout)
                  count_read(it->second, standby);  // answered (e.g. not found)
                finish(self, id, std::move(err));
              }
              dispatch(self);
            });
  }
}

void dispatch(pool_ptr self) {
  dispatch_set(self, false);
  dispatch_set(self, true);
  update_gauges(self->state);
}

void watch_worker(pool_ptr self, size_t index) { self->monitor(self->state.workers.all()[index]); }
void watch_reader(pool_ptr self, size_t index) { self->monitor(self->state.readers.all()[index]); }

// Queues `job`; `complete` gets its outcome exactly once (or the deadline's timeout error).
// `read`: an analytics read (counted by target) even when it has no standby variant.
void enqueue(pool_ptr self, db_job job, std::function<void(caf::expected<db_done>)> complete,
             bool read = false) {
  auto& st = self->state;
  if (st.waiting >= st.cfg.queue_limit) {
    ++st.rejected;
    m().rejected.inc();
    complete(make_error(errc::overloaded, "overloaded", "too many queued database requests"));
    return;
  }
  auto id = st.next_id++;
  auto timeout = job.timeout;
  db_pool_state::pending p;
  p.job = std::move(job);
  p.complete = std::move(complete);
  p.deadline = self->clock().now() + timeout;
  p.read = read || static_cast<bool>(p.job.run_on_standby);
  p.standby = p.job.run_on_standby && st.readers.size() > 0 && st.cfg.replica &&
              st.cfg.replica->usable();
  (p.standby ? st.read_queue : st.queue).push_back(id);
  ++st.waiting;
  st.jobs.emplace(id, std::move(p));
  self->delayed_send(self, timeout, deadline_atom::value, id);
  dispatch(self);
}

// Delivers a job's result to a typed promise as the domain type T.
template <class T>
std::function<void(caf::expected<db_done>)> deliver_as(caf::typed_response_promise<T> rp) {
  return [rp](caf::expected<db_done> d) mutable {
    if (!d) {
      rp.deliver(std::move(d.error()));
      return;
    }
    if (auto* v = std::any_cast<T>(&d->value))
      rp.deliver(std::move(*v));
    else
      rp.deliver(make_error(errc::internal, "internal", "internal error"));
  };
}

// A standby answer: claims no more than the standby's replay horizon `bound`; a subject it
// does not know may just not be replayed yet, so the primary answers that (no wrong 404).
template <class Result>
Result on_standby(Result r, std::optional<std::int64_t> bound) {
  if (!r.meta.found)
    throw failure_error{standby_behind("subject not replayed")};
  if (bound)
    r.meta.fresh_as_of = std::min(r.meta.fresh_as_of, *bound);
  return r;
}

failure not_found(const char* what, const std::string& id) {
  failure f;
  f.code = errc::not_found;
  f.slug = std::string(what) + "_not_found";
  f.message = "no " + std::string(what) + " " + id + " is registered";
  return f;
}

} // namespace

db_pool_actor spawn_db_pool(caf::actor_system& sys, db_pool_config cfg,
                            const db_worker_config& worker) {
  // Blocking libpqxx calls: each worker gets its own thread.
  auto spawn_worker = [&sys, worker](int) { return sys.spawn<caf::detached>(db_worker, worker); };
  return sys.spawn(db_pool, std::move(cfg), spawn_worker);
}

db_pool_actor spawn_db_pool(caf::actor_system& sys, const config::settings& s,
                            std::shared_ptr<watermark_board> watermarks,
                            std::shared_ptr<replica_state> replica) {
  db_pool_config pc;
  if (replica && !s.db_read_url.empty()) {
    pc.read_size = s.db_pool_size;
    auto reader = worker_config(s, "standby", s.db_statement_timeout);
    reader.url = s.db_read_url;
    pc.spawn_reader = [&sys, reader](int) { return sys.spawn<caf::detached>(db_worker, reader); };
    pc.replica = std::move(replica);
  }
  pc.size = s.db_pool_size;
  pc.queue_limit = static_cast<std::size_t>(s.db_queue_limit);
  pc.query_deadline = s.db_request_deadline;
  pc.mode = s.api_read_raw ? read_mode::raw : read_mode::rollups;
  pc.watermarks = std::move(watermarks);
  return spawn_db_pool(sys, pc, worker_config(s, "pool", s.db_statement_timeout));
}

db_pool_actor::behavior_type db_pool(pool_ptr self, db_pool_config cfg,
                                     worker_factory spawn_worker) {
  auto& st = self->state;
  st.cfg = cfg;
  st.spawn_worker = std::move(spawn_worker);
  m();  // register the metrics now, so /metrics lists them from the start
  for (int i = 0; i < cfg.size; ++i)
    watch_worker(self, st.workers.add(st.spawn_worker(i)));
  if (st.cfg.spawn_reader)
    for (int i = 0; i < cfg.read_size; ++i)
      watch_reader(self, st.readers.add(st.cfg.spawn_reader(i)));
  // A worker that dies is replaced at once; its job was already answered by the request's
  // error handler (request_receiver_down), so nothing queued is lost.
  self->set_down_handler([self](caf::down_msg& dm) {
    auto& st = self->state;
    if (auto found = st.workers.index_of(dm.source)) {
      auto w = *found;
      if (dm.reason == caf::exit_reason::user_shutdown || dm.reason == caf::exit_reason::kill)
        return;
      log(log_level::warn, "db_pool",
          "worker " + std::to_string(w) + " died (" + self->system().render(dm.reason) +
              "), restarting");
      st.workers.replace(w, st.spawn_worker(static_cast<int>(w)));
      ++st.worker_restarts;
      m().restarts.inc();
      watch_worker(self, w);
      dispatch(self);
      return;
    }
    if (auto found = st.readers.index_of(dm.source)) {
      auto w = *found;
      if (dm.reason == caf::exit_reason::user_shutdown || dm.reason == caf::exit_reason::kill)
        return;
      log(log_level::warn, "db_pool", "read worker " + std::to_string(w) + " died, restarting");
      st.readers.replace(w, st.cfg.spawn_reader(static_cast<int>(w)));
      ++st.worker_restarts;
      m().restarts.inc();
      watch_reader(self, w);
      dispatch(self);
    }
  });
  // Stop the workers while the state still exists (an attach_functor would run after it is
  // gone), then stop.
  self->set_exit_handler([self](caf::exit_msg& msg) {
    for (auto& w : self->state.workers.all())
      caf::anon_send_exit(w, caf::exit_reason::user_shutdown);
    for (auto& w : self->state.readers.all())
      caf::anon_send_exit(w, caf::exit_reason::user_shutdown);
    self->quit(msg.reason);
  });
  return {
      [self](series_query& q) -> caf::typed_response_promise<series_result> {
        auto& st = self->state;
        auto rp = self->make_response_promise<series_result>();
        const bool energy = q.kind == series_kind::household_energy;
        db_job job;
        job.label = energy ? "energy" : "power";
        job.timeout = st.cfg.query_deadline;
        job.run = [q, energy, mode = st.cfg.mode, wm = st.cfg.watermarks](session& s) -> std::any {
          auto r = energy ? household_energy(s, q, mode, wm.get())
                          : device_power(s, q, mode, wm.get());
          if (!r.meta.found)
            throw failure_error{not_found(energy ? "household" : "device", q.id)};
          return r;
        };
        if (st.cfg.replica)
          job.run_on_standby = [q, energy, mode = st.cfg.mode,
                                replica = st.cfg.replica](session& s) -> std::any {
            auto bound = standby_read_bound(s, *replica);
            // Not the primary's board: the standby may not have replayed those watermarks.
            auto r = energy ? household_energy(s, q, mode) : device_power(s, q, mode);
            return on_standby(std::move(r), bound);
          };
        // Without a standby every read is the primary's: joule_db_reads_total still counts it.
        enqueue(self, std::move(job), deliver_as(rp), true);
        return rp;
      },
      [self](top_query& q) -> caf::typed_response_promise<top_result> {
        auto& st = self->state;
        auto rp = self->make_response_promise<top_result>();
        db_job job;
        job.label = "top_devices";
        job.timeout = st.cfg.query_deadline;
        job.run = [q, mode = st.cfg.mode, wm = st.cfg.watermarks](session& s) -> std::any {
          auto r = top_devices(s, q, mode, wm.get());
          if (!r.meta.found)
            throw failure_error{not_found("household", q.household_id)};
          return r;
        };
        if (st.cfg.replica)
          job.run_on_standby = [q, mode = st.cfg.mode,
                                replica = st.cfg.replica](session& s) -> std::any {
            auto bound = standby_read_bound(s, *replica);
            return on_standby(top_devices(s, q, mode), bound);
          };
        enqueue(self, std::move(job), deliver_as(rp), true);
        return rp;
      },
      [self](db_job& job) -> caf::typed_response_promise<db_done> {
        auto rp = self->make_response_promise<db_done>();
        enqueue(self, std::move(job), [rp](caf::expected<db_done> d) mutable {
          if (d)
            rp.deliver(std::move(*d));
          else
            rp.deliver(std::move(d.error()));
        });
        return rp;
      },
      [self](deadline_atom, std::uint64_t id) {
        auto& st = self->state;
        auto it = st.jobs.find(id);
        if (it == st.jobs.end() || it->second.answered)
          return;
        ++st.timeouts;
        m().timeouts.inc();
        it->second.answered = true;
        it->second.complete(
            make_error(errc::timeout, "db_timeout", "the database did not answer in time"));
        // Still queued: forget it (dispatch skips ids that are gone). Running: keep the entry
        // until the worker answers, so the worker stays marked busy.
        if (it->second.queued) {
          --st.waiting;
          st.jobs.erase(it);
        }
        update_gauges(st);
      },
      [self](status_atom) -> std::string {
        auto& st = self->state;
        auto busy = st.workers.busy_count();
        return "{\"workers\":" + std::to_string(st.workers.size()) +
               ",\"busy\":" + std::to_string(busy) + ",\"queued\":" +
               std::to_string(st.queue.size()) + ",\"timeouts\":" + std::to_string(st.timeouts) +
               ",\"rejected\":" + std::to_string(st.rejected) +
               ",\"worker_restarts\":" + std::to_string(st.worker_restarts) +
               ",\"read_workers\":" + std::to_string(st.readers.size()) +
               ",\"read_queued\":" + std::to_string(st.read_queue.size()) + "}";
      },
  };
}

} // namespace joule::db
