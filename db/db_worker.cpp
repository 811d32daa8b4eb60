#include "db/db_worker.hpp"

#include <pqxx/pqxx>

#include "core/log.hpp"
#include "core/metrics.hpp"
#include "db/session.hpp"

namespace joule::db {
namespace {

std::string json_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20)
          out += ' ';
        else
          out += c;
    }
  }
  return out;
}

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

db_answer error_answer(int status, const std::string& code, const std::string& message) {
  db_answer a;
  a.status = status;
  a.error_code = code;
  a.body = "{\"error\":{\"code\":\"" + json_escape(code) + "\",\"message\":\"" +
           json_escape(message) + "\"}}";
  return a;
}

db_answer run_job(db_worker_state& st, db_job& job) {
  auto deadline = std::chrono::steady_clock::now() + job.timeout;
  for (int attempt = 0;; ++attempt) {
    if (!ensure_connected(st))
      return error_answer(503, "db_unavailable", "the database is unreachable; retry later");
    try {
      return job.run(*st.conn);
    } catch (const std::exception& e) {
      if (is_connection_error(e)) {
        st.conn.reset();
        st.backoff = std::chrono::milliseconds{1};  // reconnect at once, count it
        log(log_level::warn, "db", "connection lost (" + st.cfg.label + "): " + e.what());
        if (attempt == 0 && job.retry_on_disconnect &&
            std::chrono::steady_clock::now() < deadline)
          continue;
        return error_answer(503, "db_unavailable", "the database connection was lost; retry");
      }
      auto state = sqlstate_of(e);
      if (state == "57014")
        return error_answer(504, "db_timeout", "the query took longer than allowed");
      if (state == "40001" || state == "40P01")
        return error_answer(503, "db_conflict", "the database asked to retry");
      log(log_level::error, "db", "job '" + job.label + "' failed: " + e.what());
      return error_answer(500, "internal", "internal error");
    }
  }
}

db_worker_actor::behavior_type
db_worker(db_worker_actor::stateful_pointer<db_worker_state> self, db_worker_config cfg) {
  self->state.cfg = std::move(cfg);
  return {
      [self](db_job& job) { return run_job(self->state, job); },
  };
}

} // namespace joule::db
