#include "db/db_pool.hpp"

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "core/log.hpp"
#include "core/metrics.hpp"
#include "db/db_worker.hpp"

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
  metrics::counter& restarts = metrics::global().get_counter(
      "joule_actor_restarts_total", "Actors restarted by their supervisor",
      metrics::label("actor", "db_worker"));
};

pool_metrics& m() {
  static pool_metrics instance;
  return instance;
}

void update_gauges(db_pool_state& st) {
  m().queue_depth.set(static_cast<double>(st.queue.size()));
  double busy = 0;
  for (bool b : st.busy)
    busy += b;
  m().in_flight.set(busy);
}

void finish(pool_ptr self, std::uint64_t id, db_answer answer) {
  auto& st = self->state;
  auto it = st.jobs.find(id);
  if (it == st.jobs.end())
    return;
  if (!it->second.answered)
    it->second.promise.deliver(std::move(answer));
  st.jobs.erase(it);
}

void dispatch(pool_ptr self) {
  auto& st = self->state;
  for (size_t w = 0; w < st.workers.size() && !st.queue.empty(); ++w) {
    if (st.busy[w])
      continue;
    // Skip jobs that timed out while queued.
    while (!st.queue.empty() && st.jobs.count(st.queue.front()) == 0)
      st.queue.pop_front();
    if (st.queue.empty())
      break;
    auto id = st.queue.front();
    st.queue.pop_front();
    auto& p = st.jobs.at(id);
    p.queued = false;
    auto remaining = std::chrono::duration_cast<std::chrono::milliseconds>(
        p.deadline - self->clock().now());
    db_job job = p.job;
    job.timeout = std::max(std::chrono::milliseconds{1}, remaining);
    st.busy[w] = true;
    auto worker = st.workers[w];
    self->request(worker, caf::infinite, std::move(job))
        .then(
            [self, w, id, worker](db_answer& a) {
              if (self->state.workers[w] == worker)
                self->state.busy[w] = false;
              finish(self, id, std::move(a));
              dispatch(self);
            },
            [self, w, id, worker](caf::error& err) {
              if (self->state.workers[w] == worker)
                self->state.busy[w] = false;
              finish(self, id,
                     error_answer(503, "db_unavailable",
                                  "database worker failed: " + self->system().render(err)));
              dispatch(self);
            });
  }
  update_gauges(st);
}

void watch_worker(pool_ptr self, size_t index) { self->monitor(self->state.workers[index]); }

// A named function with arguments rather than a capturing lambda: CAF 0.17 dereferences a
// null argument tuple for argument-less function actors (UBSan reports it).
void one_shot_ask(caf::event_based_actor* self, db_pool_actor pool, db_job job,
                  std::function<void(db_answer)> then) {
  auto timeout = job.timeout + std::chrono::seconds(1);
  self->request(pool, timeout, std::move(job))
      .then([then](db_answer& a) { then(std::move(a)); },
            [then](caf::error&) {
              then(error_answer(503, "db_unavailable", "the database pool did not answer"));
            });
}

} // namespace

void ask_pool(caf::actor_system& sys, db_pool_actor pool, db_job job,
              std::function<void(db_answer)> then) {
  sys.spawn(one_shot_ask, std::move(pool), std::move(job), std::move(then));
}

db_pool_actor::behavior_type db_pool(pool_ptr self, db_pool_config cfg,
                                     worker_factory spawn_worker) {
  auto& st = self->state;
  st.cfg = cfg;
  st.spawn_worker = std::move(spawn_worker);
  m();  // register the metrics now, so /metrics lists them from the start
  for (int i = 0; i < cfg.size; ++i) {
    st.workers.push_back(st.spawn_worker(i));
    st.busy.push_back(false);
    watch_worker(self, st.workers.size() - 1);
  }
  // A worker that dies is replaced at once; its job was already answered by the request's
  // error handler (request_receiver_down), so nothing queued is lost.
  self->set_down_handler([self](caf::down_msg& dm) {
    auto& st = self->state;
    for (size_t w = 0; w < st.workers.size(); ++w) {
      if (st.workers[w].address() != dm.source)
        continue;
      if (dm.reason == caf::exit_reason::user_shutdown || dm.reason == caf::exit_reason::kill)
        return;
      log(log_level::warn, "db_pool",
          "worker " + std::to_string(w) + " died (" + self->system().render(dm.reason) +
              "), restarting");
      st.workers[w] = st.spawn_worker(static_cast<int>(w));
      st.busy[w] = false;
      ++st.worker_restarts;
      m().restarts.inc();
      watch_worker(self, w);
      dispatch(self);
      return;
    }
  });
  // Stop the workers while the state still exists (an attach_functor would run after it is
  // gone), then stop.
  self->set_exit_handler([self](caf::exit_msg& msg) {
    for (auto& w : self->state.workers)
      caf::anon_send_exit(w, caf::exit_reason::user_shutdown);
    self->quit(msg.reason);
  });
  return {
      [self](db_job& job) -> caf::typed_response_promise<db_answer> {
        auto& st = self->state;
        auto rp = self->make_response_promise<db_answer>();
        if (st.queue.size() >= st.cfg.queue_limit) {
          ++st.rejected;
          m().rejected.inc();
          rp.deliver(error_answer(503, "overloaded", "too many queued database requests"));
          return rp;
        }
        auto id = st.next_id++;
        auto timeout = job.timeout;
        st.jobs.emplace(id, db_pool_state::pending{std::move(job), rp,
                                                   self->clock().now() + timeout, false, true});
        st.queue.push_back(id);
        self->delayed_send(self, timeout, deadline_atom::value, id);
        dispatch(self);
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
        it->second.promise.deliver(
            error_answer(504, "db_timeout", "the database did not answer in time"));
        // Still queued: forget it (dispatch skips ids that are gone). Running: keep the entry
        // until the worker answers, so the worker stays marked busy.
        if (it->second.queued)
          st.jobs.erase(it);
        update_gauges(st);
      },
      [self](status_atom) -> std::string {
        auto& st = self->state;
        size_t busy = 0;
        for (bool b : st.busy)
          busy += b;
        return "{\"workers\":" + std::to_string(st.workers.size()) +
               ",\"busy\":" + std::to_string(busy) + ",\"queued\":" +
               std::to_string(st.queue.size()) + ",\"timeouts\":" + std::to_string(st.timeouts) +
               ",\"rejected\":" + std::to_string(st.rejected) +
               ",\"worker_restarts\":" + std::to_string(st.worker_restarts) + "}";
      },
  };
}

} // namespace joule::db
