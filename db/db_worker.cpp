#include "db/db_worker.hpp"

#include <pqxx/pqxx>

#include "core/log.hpp"
#include "core/metrics.hpp"
#include "db/session.hpp"

namespace joule::db {
namespace {

metrics::counter& reconnects(const std::string& label) {
  return metrics::global().get_counter("joule_db_reconnects_total",
                                       "Connections (re)opened after a failure",
                                       metrics::label("worker", label));
}

// Opens the connection if there is none and backoff allows; false if the DB is unreachable.
bool ensure_connected(db_worker_state& st) {
  if (st.conn)
    return true;
  auto now = std::chrono::steady_clock::now();
  if (now < st.next_attempt)
    return false;
  try {
    st.conn = std::make_unique<session>(st.cfg.url, st.cfg.statement_timeout,
                                        st.cfg.connect_timeout);
    if (st.backoff.count() > 0) {
      log(log_level::info, "db", "reconnected (" + st.cfg.label + ")");
      reconnects(st.cfg.label).inc();
    }
    st.backoff = std::chrono::milliseconds{0};
    return true;
  } catch (const std::exception& e) {
    st.backoff = st.backoff.count() == 0
                     ? std::chrono::milliseconds{100}
                     : std::min(st.cfg.backoff_max, st.backoff * 2);
    st.next_attempt = now + st.backoff;
    log(log_level::warn, "db",
        "cannot connect (" + st.cfg.label + "), retry in " + std::to_string(st.backoff.count()) +
            " ms: " + e.what());
    return false;
  }
}

} // namespace

db_worker_config worker_config(const config::settings& s, const std::string& label,
                               std::chrono::milliseconds statement_timeout) {
  db_worker_config c;
  c.url = s.db_url;
  c.statement_timeout = statement_timeout;
  c.backoff_max = s.db_reconnect_backoff_max;
  c.label = label;
  return c;
}

caf::expected<db_done> run_job(db_worker_state& st, db_job& job) {
  auto deadline = std::chrono::steady_clock::now() + job.timeout;
  for (int attempt = 0;; ++attempt) {
    if (!ensure_connected(st))
      return make_error(errc::unavailable, "db_unavailable",
                        "the database is unreachable; retry later");
    try {
      return db_done{job.run(*st.conn)};
    } catch (const failure_error& f) {
      return make_error(f.what);
    } catch (const std::exception& e) {
      if (is_connection_error(e)) {
        st.conn.reset();
        st.backoff = std::chrono::milliseconds{1};  // reconnect at once, count it
        log(log_level::warn, "db", "connection lost (" + st.cfg.label + "): " + e.what());
        if (attempt == 0 && job.retry_on_disconnect &&
            std::chrono::steady_clock::now() < deadline)
          continue;
        return make_error(errc::unavailable, "db_unavailable",
                          "the database connection was lost; retry");
      }
      auto state = sqlstate_of(e);
      if (state == "57014")
        return make_error(errc::timeout, "db_timeout", "the query took longer than allowed");
      if (state == "40001" || state == "40P01")
        return make_error(errc::unavailable, "db_conflict", "the database asked to retry");
      log(log_level::error, "db", "job '" + job.label + "' failed: " + e.what());
      return make_error(errc::internal, "internal", "internal error");
    }
  }
}

db_worker_actor::behavior_type
db_worker(db_worker_actor::stateful_pointer<db_worker_state> self, db_worker_config cfg) {
  self->state.cfg = std::move(cfg);
  return {
      [self](db_job& job) -> caf::result<db_done> {
        auto r = run_job(self->state, job);
        if (!r)
          return std::move(r.error());
        return std::move(*r);
      },
  };
}

} // namespace joule::db
