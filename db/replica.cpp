#include "db/replica.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>

#include <caf/actor_system.hpp>
#include <pqxx/pqxx>

#include "core/log.hpp"
#include "core/metrics.hpp"
#include "db/session.hpp"

namespace joule::db {

std::optional<std::uint64_t> parse_lsn(const std::string& text) {
  auto slash = text.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 >= text.size() || slash > 8 ||
      text.size() - slash - 1 > 8)
    return std::nullopt;
  std::uint64_t hi = 0, lo = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (i == slash)
      continue;
    char c = text[i];
    int d = c >= '0' && c <= '9'   ? c - '0'
            : c >= 'A' && c <= 'F' ? c - 'A' + 10
            : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                   : -1;
    if (d < 0)
      return std::nullopt;
    auto& part = i < slash ? hi : lo;
    part = part * 16 + static_cast<std::uint64_t>(d);
  }
  return (hi << 32) | lo;
}

void replica_state::add_primary_sample(std::int64_t at, std::uint64_t lsn) {
  std::lock_guard<std::mutex> lock(mu_);
  // Kept increasing in both: a sample older or lower than the newest adds nothing.
  if (!samples_.empty() && (at <= samples_.back().first || lsn < samples_.back().second))
    return;
  samples_.emplace_back(at, lsn);
  while (samples_.size() > max_samples_)
    samples_.pop_front();
}

std::optional<std::int64_t> replica_state::horizon(const replay_position& p) const {
  if (!p.in_recovery)
    return p.now;
  std::optional<std::int64_t> h = p.replay_ts;
  if (p.replay_lsn) {
    std::lock_guard<std::mutex> lock(mu_);
    // The newest sample whose LSN the standby has replayed (samples increase in both).
    for (auto it = samples_.rbegin(); it != samples_.rend(); ++it)
      if (it->second <= *p.replay_lsn) {
        h = h ? std::max(*h, it->first) : it->first;
        break;
      }
  }
  return h;
}

double replica_state::lag_seconds(const replay_position& p) const {
  auto h = horizon(p);
  if (!h)
    return std::numeric_limits<double>::infinity();
  return std::max<double>(0, static_cast<double>(p.now - *h) / 1e6);
}

bool replica_state::fresh_enough(const replay_position& p) const {
  return lag_seconds(p) * 1000.0 <= static_cast<double>(max_lag_.count());
}

void replica_state::publish(bool reachable, double lag, std::chrono::steady_clock::time_point at) {
  reachable_.store(reachable, std::memory_order_relaxed);
  lag_.store(lag, std::memory_order_relaxed);
  published_at_.store(
      std::chrono::duration_cast<std::chrono::nanoseconds>(at.time_since_epoch()).count(),
      std::memory_order_relaxed);
  usable_.store(reachable && lag * 1000.0 <= static_cast<double>(max_lag_.count()),
                std::memory_order_relaxed);
}

std::chrono::milliseconds replica_state::verdict_ttl() const {
  return std::max<std::chrono::milliseconds>(2 * max_lag_, std::chrono::seconds(5));
}

bool replica_state::usable(std::chrono::steady_clock::time_point now) const {
  // A standby host that vanished mid-statement (no RST) blocks the monitor in libpq until
  // TCP gives up, minutes later; its last verdict must not keep sending reads there.
  if (!usable_.load(std::memory_order_relaxed))
    return false;
  std::chrono::steady_clock::time_point at{std::chrono::nanoseconds(
      published_at_.load(std::memory_order_relaxed))};
  return now - at <= verdict_ttl();
}

std::string replica_state::status_json(bool configured) const {
  std::ostringstream out;
  auto l = lag();
  out << "{\"read_target\":\"" << (configured && usable() ? "standby" : "primary")
      << "\",\"standby\":\""
      << (!configured ? "none" : reachable() ? "reachable" : "unreachable")
      << "\",\"lag_seconds\":";
  if (configured && std::isfinite(l))
    out << l;
  else
    out << "null";
  out << ",\"read_max_lag_seconds\":" << static_cast<double>(max_lag_.count()) / 1000.0 << "}";
  return out.str();
}

replay_position read_replay_position(session& s) {
  pqxx::nontransaction q{s.conn()};
  auto r = q.exec(
      "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text, "
      "(extract(epoch from pg_last_xact_replay_timestamp()) * 1000000)::bigint, "
      "(extract(epoch from now()) * 1000000)::bigint");
  replay_position p;
  p.in_recovery = r[0][0].as<bool>();
  if (!r[0][1].is_null())
    p.replay_lsn = parse_lsn(r[0][1].as<std::string>());
  if (!r[0][2].is_null())
    p.replay_ts = r[0][2].as<std::int64_t>();
  p.now = r[0][3].as<std::int64_t>();
  return p;
}

failure standby_behind(const std::string& why) {
  failure f;
  f.code = errc::unavailable;
  f.slug = "standby_behind";
  f.message = "the standby cannot answer this read yet (" + why + ")";
  return f;
}

bool is_standby_behind(const caf::error& e) {
  if (e.category() != caf::atom("joule"))
    return false;
  return failure_of(e).slug == "standby_behind";
}

std::optional<std::int64_t> standby_read_bound(session& s, const replica_state& replica) {
  auto p = read_replay_position(s);
  if (!p.in_recovery)
    return std::nullopt;
  auto h = replica.horizon(p);
  if (!h)
    throw failure_error{standby_behind("replay horizon unknown")};
  if (!replica.fresh_enough(p))
    throw failure_error{standby_behind("replay lag above db.read_max_lag")};
  return h;
}

settled_part settled_energy_on_standby(session& s, const std::string& household,
                                       std::int64_t step, std::int64_t lo, std::int64_t hi,
                                       const std::string& versions) {
  auto p = read_replay_position(s);
  if (p.in_recovery) {
    pqxx::nontransaction q{s.conn()};
    auto r = q.exec("SELECT (extract(epoch from watermark) * 1000000)::bigint FROM rollup_state "
                    "WHERE name = 'household_5m'");
    if (r.empty() || r[0][0].is_null() || r[0][0].as<std::int64_t>() < hi)
      throw failure_error{standby_behind("household_5m watermark not replayed")};
  }
  // A later snapshot than the check: the watermark only grows.
  auto part = settled_energy(s, household, step, lo, hi);
  if (p.in_recovery && part.versions != versions)
    throw failure_error{standby_behind("settled hours at another version")};
  return part;
}

// --- the lag monitor

namespace {

using self_ptr = replica_monitor_actor::stateful_pointer<replica_monitor_state>;

struct monitor_metrics {
  metrics::gauge& lag = metrics::global().get_gauge(
      "joule_db_replica_lag_seconds",
      "Replay lag of the read standby (db.read_url): now minus its replay horizon; +Inf when "
      "unreachable");
  metrics::counter& queries = metrics::global().get_counter(
      "joule_db_queries_total", "Statements sent to PostgreSQL, by source",
      metrics::label("source", "replica_monitor"));
};

monitor_metrics& m() {
  static monitor_metrics instance;
  return instance;
}

// Runs `f` on the session in `slot`, connecting first; false (and the session dropped) when
// the server is unreachable or the statement fails.
template <class F>
bool with_session(self_ptr self, std::unique_ptr<session>& slot, const std::string& url,
                  const char* what, F f) {
  auto& st = self->state;
  try {
    if (!slot)
      slot = std::make_unique<session>(url, std::chrono::milliseconds{1000},
                                       st.cfg.connect_timeout);
    m().queries.inc();
    f(*slot);
    return true;
  } catch (const std::exception& e) {
    if (slot)
      log(log_level::warn, "replica", std::string("lost the ") + what + ": " + e.what());
    slot.reset();
    return false;
  }
}

void sample(self_ptr self) {
  auto& st = self->state;
  auto& replica = *st.cfg.replica;
  ++st.ticks;
  with_session(self, st.primary, st.cfg.primary_url, "primary", [&](session& s) {
    pqxx::nontransaction q{s.conn()};
    // now() first (statement start), then the insert position: every commit acknowledged
    // before that now() lies below it.
    auto r = q.exec("SELECT (extract(epoch from now()) * 1000000)::bigint, "
                    "pg_current_wal_insert_lsn()::text");
    if (auto lsn = parse_lsn(r[0][1].as<std::string>()))
      replica.add_primary_sample(r[0][0].as<std::int64_t>(), *lsn);
  });
  replay_position pos;
  bool reachable = with_session(self, st.standby, st.cfg.standby_url, "standby",
                                [&](session& s) { pos = read_replay_position(s); });
  double lag = reachable ? replica.lag_seconds(pos) : std::numeric_limits<double>::infinity();
  bool was = replica.usable();
  replica.publish(reachable, lag);
  m().lag.set(lag);
  if (was != replica.usable())
    log(log_level::info, "replica",
        replica.usable() ? "analytics reads go to the standby"
                         : "analytics reads go to the primary (standby lagging or unreachable)",
        {{"lag_seconds", std::isfinite(lag) ? std::to_string(lag) : std::string("inf")}});
}

} // namespace

replica_monitor_actor::behavior_type replica_monitor(self_ptr self, replica_monitor_config cfg) {
  self->state.cfg = std::move(cfg);
  // Without a standby it only reports (every read on the primary).
  if (!self->state.cfg.standby_url.empty()) {
    m();
    self->send(self, tick_atom::value);
  }
  return {
      [self](tick_atom) {
        sample(self);
        self->delayed_send(self, self->state.cfg.interval, tick_atom::value);
      },
      [self](status_atom) -> std::string {
        auto json = self->state.cfg.replica->status_json(!self->state.cfg.standby_url.empty());
        json.pop_back();
        return json + ",\"ticks\":" + std::to_string(self->state.ticks) + "}";
      },
  };
}

replica_monitor_actor spawn_replica_monitor(caf::actor_system& sys, const config::settings& s,
                                            std::shared_ptr<replica_state> replica) {
  replica_monitor_config c;
  c.primary_url = s.db_url;
  c.standby_url = s.db_read_url;
  auto tick = s.db_read_max_lag / 8;
  c.interval = std::clamp<std::chrono::milliseconds>(
      std::chrono::duration_cast<std::chrono::milliseconds>(tick),
      std::chrono::milliseconds{50}, std::chrono::milliseconds{1000});
  c.replica = std::move(replica);
  // Without a standby it never blocks: no thread of its own.
  if (c.standby_url.empty())
    return sys.spawn(replica_monitor, std::move(c));
  return sys.spawn<caf::detached>(replica_monitor, std::move(c));
}

} // namespace joule::db
