#include "db/live_tail.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include <caf/actor_system.hpp>
#include <pqxx/pqxx>

#include "core/log.hpp"
#include "core/metrics.hpp"
#include "core/timefmt.hpp"
#include "db/db_worker.hpp"
#include "db/session.hpp"

namespace joule::db {
namespace {

constexpr std::int64_t minute = 60 * micros_per_second;
constexpr std::int64_t five_min = 5 * minute;
constexpr std::int64_t hour = 60 * minute;

std::string us(const std::string& expr) {
  return "(extract(epoch from " + expr + ") * 1000000)::bigint";
}
std::string ts(std::int64_t t) { return format_rfc3339(t); }

std::optional<double> opt_double(const pqxx::field& f) {
  if (f.is_null())
    return std::nullopt;
  return f.as<double>();
}

void add_opt(std::optional<double>& into, const std::optional<double>& v) {
  if (v)
    into = into ? *into + *v : *v;
}

// Adds `b` to the bucket of `list` starting at b.start (appending when new); lists are built
// in any order and sorted at the end.
void accumulate(std::unordered_map<std::string, std::map<std::int64_t, live_bucket>>& into,
                const std::string& id, const live_bucket& b) {
  auto& slot = into[id];
  auto it = slot.find(b.start);
  if (it == slot.end())
    slot.emplace(b.start, b);
  else
    it->second.add(b);
}

std::size_t flatten(std::unordered_map<std::string, std::map<std::int64_t, live_bucket>>& from,
                    std::unordered_map<std::string, std::vector<live_bucket>>& to) {
  std::size_t n = 0;
  to.reserve(from.size());
  for (auto& [id, m] : from) {
    auto& v = to[id];
    v.reserve(m.size());
    for (auto& [t, b] : m)
      v.push_back(b);
    n += v.size();
  }
  from.clear();
  return n;
}

live_bucket bucket_of(const pqxx::row& row, int first, std::int64_t start, bool has_max) {
  live_bucket b;
  b.start = start;
  b.energy_sum = opt_double(row[first]);
  b.power_sum = opt_double(row[first + 1]);
  b.power_count = row[first + 2].is_null() ? 0 : row[first + 2].as<std::int64_t>();
  if (has_max)
    b.power_max = opt_double(row[first + 3]);
  return b;
}

} // namespace

void live_bucket::add(const live_bucket& o) {
  add_opt(energy_sum, o.energy_sum);
  add_opt(power_sum, o.power_sum);
  power_count += o.power_count;
  if (o.power_max)
    power_max = power_max ? std::max(*power_max, *o.power_max) : *o.power_max;
}

std::string live_snapshot::version_text(const std::string& rollup, std::int64_t lo,
                                        std::int64_t hi) const {
  std::string out;
  auto it = versions.find(rollup);
  if (it == versions.end())
    return out;
  for (auto v = it->second.lower_bound(floor_to(lo, hour)); v != it->second.end() && v->first < hi;
       ++v) {
    if (!out.empty())
      out += ',';
    out += std::to_string(v->first) + ":" + std::to_string(v->second);
  }
  return out;
}

std::optional<std::int64_t> live_snapshot::fresh_cap(const std::string& rollup, std::int64_t lo,
                                                     std::int64_t hi) const {
  std::optional<std::int64_t> cap;
  if (lo >= hi)
    return cap;
  // The same overlap rule as the query path's meta CTE (log ranges are inclusive).
  for (auto& p : pending)
    if (p.rollup == rollup && p.lo < hi && p.hi >= lo)
      cap = cap ? std::min(*cap, p.logged_at) : p.logged_at;
  return cap;
}

bool live_snapshot::late_touches(const std::string& rollup, std::int64_t lo, std::int64_t hi,
                                 const std::string& household) const {
  if (lo >= hi)
    return false;
  for (auto& p : pending)
    if (p.rollup == rollup && p.lo < hi && p.hi >= lo &&
        (p.households.empty() ||
         std::find(p.households.begin(), p.households.end(), household) != p.households.end()))
      return true;
  return false;
}

live_snapshot read_live_tail(session& s, std::int64_t grace_us) {
  live_snapshot snap;
  pqxx::transaction<pqxx::isolation_level::repeatable_read, pqxx::readwrite_policy::read_only> tx{
      s.conn()};
  // The clock and every watermark.
  for (auto row : tx.exec("SELECT " + us("now()") + ", name, " + us("watermark") +
                          " FROM rollup_state")) {
    snap.db_now = row[0].as<std::int64_t>();
    if (row[2].is_null())
      continue;
    auto name = row[1].as<std::string>();
    auto wm = row[2].as<std::int64_t>();
    if (name == "device_1m")
      snap.wm_device_1m = wm;
    else if (name == "household_5m")
      snap.wm_household_5m = wm;
    else if (name == "device_1h")
      snap.wm_device_1h = wm;
  }
  ++snap.queries;
  if (snap.db_now == 0) {
    snap.db_now = tx.exec("SELECT " + us("now()"))[0][0].as<std::int64_t>();
    ++snap.queries;
  }
  const auto now = snap.db_now;
  // Versions of settled hours, and late writes no refresh has reflected yet.
  snap.versions_from = floor_to(now - live_versions_span, hour);
  for (auto row : tx.exec_params("SELECT rollup, " + us("hour") +
                                     ", gen FROM rollup_versions WHERE hour >= $1::timestamptz",
                                 ts(snap.versions_from)))
    snap.versions[row[0].as<std::string>()][row[1].as<std::int64_t>()] = row[2].as<std::int64_t>();
  ++snap.queries;
  for (auto row : tx.exec("SELECT i.rollup, " + us("i.lo") + ", " + us("i.hi") + ", " +
                          us("i.logged_at") +
                          ", array_to_string(i.households, ',')"
                          " FROM rollup_invalidations i JOIN rollup_state s ON s.name = i.rollup "
                          "WHERE i.lo < s.watermark")) {
    pending_write p{row[0].as<std::string>(), row[1].as<std::int64_t>(),
                    row[2].as<std::int64_t>(), row[3].as<std::int64_t>(), {}};
    if (!row[4].is_null()) {
      std::string list = row[4].as<std::string>();
      for (std::size_t at = 0; at < list.size();) {
        auto comma = list.find(',', at);
        if (comma == std::string::npos)
          comma = list.size();
        if (comma > at)
          p.households.push_back(list.substr(at, comma - at));
        at = comma + 1;
      }
    }
    snap.pending.push_back(std::move(p));
  }
  ++snap.queries;
  for (auto row : tx.exec("SELECT id::text, household_id::text FROM devices")) {
    auto hh = row[1].as<std::string>();
    snap.households.insert(hh);
    snap.device_household.emplace(row[0].as<std::string>(), std::move(hh));
  }
  ++snap.queries;

  // Without a device 1 min watermark close to now there is no cheap tail: the live path is
  // off (readers use the database) until the refresh catches up.
  if (!snap.wm_device_1m || now - *snap.wm_device_1m > live_max_raw_span)
    return snap;
  const auto wm1 = *snap.wm_device_1m;
  // The alert feed's look-back: from the last closed 5 min bucket on.
  const auto lookback = floor_to(now - grace_us, five_min) - five_min;
  snap.device_lo = std::min(floor_to(wm1, five_min), lookback);
  snap.household_1m_lo = lookback;
  const bool hh_ok = snap.wm_household_5m && wm1 - *snap.wm_household_5m <= 3 * hour &&
                     *snap.wm_household_5m <= wm1;
  std::int64_t wm5 = hh_ok ? *snap.wm_household_5m : wm1;
  snap.household_lo = std::min(floor_to(wm5, hour), lookback);

  std::unordered_map<std::string, std::map<std::int64_t, live_bucket>> dev, hh5, hh1;
  if (hh_ok) {
    // Household 5 min rollup rows of the tail's first hour (settled, but the live part of an
    // hourly answer starts at the hour).
    for (auto row : tx.exec_params(
             "SELECT household_id::text, " + us("bucket") +
                 ", energy_wh_sum, power_w_sum, power_w_count FROM rollup_household_5m "
                 "WHERE bucket >= $1::timestamptz AND bucket < $2::timestamptz",
             ts(snap.household_lo), ts(wm5)))
      accumulate(hh5, row[0].as<std::string>(), bucket_of(row, 2, row[1].as<std::int64_t>(), false));
    ++snap.queries;
  }
  // Device 1 min rollup rows from the earliest bound anyone needs up to its watermark; the
  // households' share by the devices' registered households (as the feed and the device
  // read path assume).
  auto dev_from = std::min(snap.device_lo, wm5);
  for (auto row : tx.exec_params(
           "SELECT r.device_id::text, d.household_id::text, " + us("r.bucket") +
               ", r.energy_wh_sum, r.power_w_sum, r.power_w_count, r.power_w_max "
               "FROM rollup_device_1m r JOIN devices d ON d.id = r.device_id "
               "WHERE r.bucket >= $1::timestamptz AND r.bucket < $2::timestamptz",
           ts(dev_from), ts(wm1))) {
    auto t = row[2].as<std::int64_t>();
    auto b = bucket_of(row, 3, t, true);
    if (t >= snap.device_lo)
      accumulate(dev, row[0].as<std::string>(), b);
    if (t >= snap.household_1m_lo)
      accumulate(hh1, row[1].as<std::string>(), b);
    if (hh_ok && t >= wm5) {
      b.start = floor_to(t, five_min);
      b.power_max.reset();
      accumulate(hh5, row[1].as<std::string>(), b);
    }
  }
  ++snap.queries;
  // Raw rows above the device 1 min watermark, grouped by the rows' own household and device.
  for (auto row : tx.exec_params(
           "SELECT household_id::text, device_id::text, " +
               us("date_bin('1 minute', ts, '2000-01-01 00:00:00+00')") +
               ", sum(energy_wh), sum(power_w), count(power_w), max(power_w) FROM telemetry "
               "WHERE ts >= $1::timestamptz GROUP BY 1, 2, 3",
           ts(wm1))) {
    auto t = row[2].as<std::int64_t>();
    auto b = bucket_of(row, 3, t, true);
    accumulate(dev, row[1].as<std::string>(), b);
    if (t >= snap.household_1m_lo)
      accumulate(hh1, row[0].as<std::string>(), b);
    if (hh_ok) {
      b.start = floor_to(t, five_min);
      b.power_max.reset();
      accumulate(hh5, row[0].as<std::string>(), b);
    }
  }
  ++snap.queries;
  tx.commit();
  snap.bucket_count = flatten(dev, snap.device_1m) + flatten(hh1, snap.household_1m);
  snap.devices_ok = true;
  if (hh_ok) {
    snap.bucket_count += flatten(hh5, snap.household_5m);
    snap.households_ok = true;
  }
  return snap;
}

settled_part settled_energy(session& s, const std::string& household, std::int64_t step,
                            std::int64_t lo, std::int64_t hi) {
  pqxx::nontransaction q{s.conn()};
  // One statement: the versions and the rows come from the same snapshot, so the body is
  // stored under the version of exactly the rows it was computed from.
  auto sql =
      "WITH v AS (SELECT coalesce(string_agg(" + us("hour") +
      "::text || ':' || gen::text, ',' ORDER BY hour), '') AS v FROM rollup_versions "
      "WHERE rollup = 'household_5m' AND hour >= date_bin('1 hour', $2::timestamptz, "
      "'2000-01-01 00:00:00+00') AND hour < $3::timestamptz) "
      "SELECT v.v, s.b, s.e FROM v LEFT JOIN (SELECT " +
      us("date_bin($4::interval, bucket, '2000-01-01 00:00:00+00')") +
      " AS b, sum(energy_wh_sum) AS e FROM rollup_household_5m WHERE household_id = $1::uuid "
      "AND bucket >= $2::timestamptz AND bucket < $3::timestamptz GROUP BY 1) s ON true "
      "ORDER BY s.b";
  s.prepare("live_settled_energy", sql);
  auto r = q.exec_prepared("live_settled_energy", household, ts(lo), ts(hi),
                           std::to_string(step / micros_per_second) + " seconds");
  settled_part out;
  for (auto row : r) {
    out.versions = row[0].as<std::string>();
    if (row[1].is_null())
      continue;
    out.points.emplace_back(row[1].as<std::int64_t>(), opt_double(row[2]));
  }
  return out;
}

// --- the actor

namespace {

using self_ptr = live_tail_actor::stateful_pointer<live_tail_state>;

struct tail_metrics {
  metrics::counter& queries = metrics::global().get_counter(
      "joule_db_queries_total", "Statements sent to PostgreSQL, by source",
      metrics::label("source", "live_tail"));
  metrics::gauge& last_cycle = metrics::global().get_gauge(
      "joule_live_tail_last_cycle_seconds", "Duration of the latest live tail cycle");
  metrics::gauge& buckets = metrics::global().get_gauge(
      "joule_live_tail_buckets", "Buckets held by the live tail snapshot");
  metrics::counter& failures = metrics::global().get_counter(
      "joule_live_tail_failures_total", "Live tail cycles that failed");
};

tail_metrics& m() {
  static tail_metrics instance;
  return instance;
}

void run_cycle(self_ptr self) {
  auto& st = self->state;
  if (st.running)
    return;
  st.running = true;
  auto out = std::make_shared<live_snapshot>();
  db_job job;
  job.label = "live_tail";
  job.timeout = st.cfg.job_timeout;
  job.run = [out, grace = st.cfg.grace_us, retired = std::move(st.retired)](session& s) mutable {
    retired.reset();
    *out = read_live_tail(s, grace);
    return std::any{};
  };
  auto started = std::chrono::steady_clock::now();
  self->request(st.worker, caf::infinite, std::move(job))
      .then(
          [self, out, started](db_done&) {
            auto& st = self->state;
            st.running = false;
            ++st.cycles;
            out->seq = ++st.seq;
            out->taken = std::chrono::steady_clock::now();
            st.last_duration_ms =
                std::chrono::duration<double, std::milli>(out->taken - started).count();
            st.last_buckets = out->bucket_count;
            m().queries.inc(static_cast<std::uint64_t>(out->queries));
            m().last_cycle.set(st.last_duration_ms / 1000.0);
            m().buckets.set(static_cast<double>(out->bucket_count));
            if (st.cfg.holder)
              st.cfg.holder->set(out).swap(st.retired);
          },
          [self](caf::error& err) {
            auto& st = self->state;
            st.running = false;
            ++st.cycles;
            ++st.failures;
            m().failures.inc();
            // Readers must not join with a tail that stopped moving.
            if (st.cfg.holder)
              st.cfg.holder->set(nullptr).swap(st.retired);
            log(log_level::warn, "live", "live tail cycle failed: " + failure_of(err).message);
          });
}

} // namespace

live_tail_actor::behavior_type live_tail(self_ptr self, live_tail_config cfg,
                                         db_worker_actor worker) {
  self->state.cfg = std::move(cfg);
  self->state.worker = std::move(worker);
  self->link_to(self->state.worker);
  m();
  self->send(self, tick_atom::value);
  return {
      [self](tick_atom) {
        self->delayed_send(self, self->state.cfg.interval, tick_atom::value);
        run_cycle(self);
      },
      [self](status_atom) -> std::string {
        auto& st = self->state;
        std::string age = "null";
        if (st.cfg.holder)
          if (auto s = st.cfg.holder->get())
            age = std::to_string(std::chrono::duration<double, std::milli>(
                                     std::chrono::steady_clock::now() - s->taken)
                                     .count());
        return "{\"cycles\":" + std::to_string(st.cycles) +
               ",\"failures\":" + std::to_string(st.failures) +
               ",\"last_duration_ms\":" + std::to_string(st.last_duration_ms) +
               ",\"buckets\":" + std::to_string(st.last_buckets) +
               ",\"snapshot_age_ms\":" + age + "}";
      },
  };
}

live_tail_actor spawn_live_tail(caf::actor_system& sys, const config::settings& s,
                                std::shared_ptr<live_tail_holder> holder) {
  live_tail_config cfg;
  // The tail also feeds the alert evaluators: it runs at the faster of the two intervals.
  cfg.interval = s.alerts_enabled ? std::min(s.live_interval, s.alerts_feed_interval)
                                  : s.live_interval;
  cfg.job_timeout = std::max(s.db_request_deadline, s.live_interval * 5);
  cfg.holder = std::move(holder);
  auto worker = sys.spawn<caf::detached>(db_worker,
                                         worker_config(s, "live_tail", cfg.job_timeout));
  return sys.spawn(live_tail, cfg, worker);
}

} // namespace joule::db
