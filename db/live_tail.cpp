#include "db/live_tail.hpp"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>

#include <caf/actor_system.hpp>
#include <pqxx/pqxx>

#include "core/log.hpp"
#include "core/metrics.hpp"
#include "core/timefmt.hpp"
#include "db/db_worker.hpp"
#include "db/rollups.hpp"
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

// --- the incremental reader

namespace {

using read_tx =
    pqxx::transaction<pqxx::isolation_level::repeatable_read, pqxx::readwrite_policy::read_only>;
using bucket_map = std::map<std::int64_t, live_bucket>;
using keyed_buckets = std::unordered_map<std::string, bucket_map>;

// Rollup rows over [lo, hi), kept between cycles: read once as the watermark passes them,
// again only when a refresh rewrote one of their hours (their version text changed).
struct rollup_part {
  bool ok = false;
  std::uint64_t generation = 0;  // bumped whenever its rows change
  std::int64_t lo = 0, hi = 0;
  std::string versions;
  keyed_buckets rows;  // key (device or household) -> bucket
};

// Forgets a part's rows; its generation keeps counting (what was built from it is stale).
void clear(rollup_part& p) {
  p.ok = false;
  p.rows.clear();
  p.versions.clear();
  ++p.generation;
}

// Drops the buckets before `lo` (the window moved on).
void drop_before(keyed_buckets& rows, std::int64_t lo) {
  for (auto it = rows.begin(); it != rows.end();) {
    auto& m = it->second;
    m.erase(m.begin(), m.lower_bound(lo));
    it = m.empty() ? rows.erase(it) : std::next(it);
  }
}

std::string bigint_list(const std::vector<std::int64_t>& v) {
  std::string out = "{";
  for (std::size_t i = 0; i < v.size(); ++i)
    out += (i ? "," : "") + std::to_string(v[i]);
  return out + "}";
}

void add_to(bucket_map& m, const live_bucket& b) {
  auto [it, fresh] = m.emplace(b.start, b);
  if (!fresh)
    it->second.add(b);
}

// Adds `b` to its bucket in the ascending list `v`; returns 1 if that bucket is new. Raw
// buckets come after the rollup-derived ones (they lie above the watermarks), so this almost
// always appends or merges with the last bucket.
std::size_t merge_into(std::vector<live_bucket>& v, const live_bucket& b) {
  if (v.empty() || v.back().start < b.start) {
    v.push_back(b);
    return 1;
  }
  if (v.back().start == b.start) {
    v.back().add(b);
    return 0;
  }
  auto it = std::lower_bound(v.begin(), v.end(), b.start,
                             [](const live_bucket& x, std::int64_t t) { return x.start < t; });
  if (it != v.end() && it->start == b.start) {
    it->add(b);
    return 0;
  }
  v.insert(it, b);
  return 1;
}

} // namespace

struct live_tail_reader::impl {
  // Raw rows above the device 1 min watermark, grouped by device, the row's own household
  // and minute (the household of a raw row is its own, as every raw query reads it).
  bool raw_ok = false;
  std::int64_t raw_wm = 0;
  // The last batch of log rows a device_1m refresh consumed (live_tail_consumed) and the count
  // of unaccounted log removals, as of the last snapshot (see cycle()).
  std::int64_t batch = 0;
  std::int64_t resets = 0;
  std::unordered_set<std::string> seen;  // device_1m log rows seen last cycle (see cycle())
  std::unordered_map<std::string, keyed_buckets> raw;  // device -> household -> buckets

  rollup_part device_1m, household_5m;

  bool devices_ok = false;
  std::uint64_t devices_generation = 0;
  std::int64_t device_count = -1;
  std::string device_sum;
  std::unordered_map<std::string, std::string> device_household;
  std::unordered_set<std::string> households;
  std::shared_ptr<const std::unordered_map<std::string, std::vector<std::string>>>
      household_devices;

  // The part of the snapshot that comes from rollup rows, merged and flattened: rebuilt only
  // when those rows, the device list or the snapshot's bounds change (every minute or so);
  // each cycle copies it and lays the raw buckets over it.
  struct base_key {
    std::uint64_t dev_gen = 0, hh_gen = 0, devices_gen = 0;
    std::int64_t device_lo = 0, household_1m_lo = 0, household_lo = 0, wm5 = 0;
    bool hh_ok = false;
    bool operator==(const base_key& o) const {
      return dev_gen == o.dev_gen && hh_gen == o.hh_gen && devices_gen == o.devices_gen &&
             device_lo == o.device_lo && household_1m_lo == o.household_1m_lo &&
             household_lo == o.household_lo && wm5 == o.wm5 && hh_ok == o.hh_ok;
    }
  };
  bool base_ok = false;
  base_key base_at;
  std::unordered_map<std::string, std::vector<live_bucket>> base_dev, base_hh1, base_hh5;
  std::size_t base_count = 0;

  stats last;

  void reset() {
    base_ok = false;
    base_dev.clear();
    base_hh1.clear();
    base_hh5.clear();
    raw_ok = false;
    seen.clear();
    raw.clear();
    clear(device_1m);
    clear(household_5m);
    devices_ok = false;
    device_household.clear();
    households.clear();
    household_devices.reset();
  }

  void read_part(read_tx& tx, rollup_part& part, const live_snapshot& snap, const std::string& rollup,
                 const std::string& sql, bool has_max, std::int64_t lo, std::int64_t hi,
                 live_snapshot& out) {
    const bool incremental = part.ok && lo >= part.lo && hi >= part.hi &&
                             part.versions == snap.version_text(rollup, part.lo, part.hi);
    std::int64_t from = lo;
    if (incremental) {
      if (lo == part.lo && hi == part.hi)
        return;  // nothing moved
      drop_before(part.rows, lo);
      from = part.hi;
    } else {
      part.rows.clear();
    }
    ++part.generation;
    if (from < hi) {
      for (auto row : tx.exec_params(sql, ts(from), ts(hi))) {
        add_to(part.rows[row[0].as<std::string>()],
               bucket_of(row, 2, row[1].as<std::int64_t>(), has_max));
        ++last.rollup_rows;
      }
      ++out.queries;
    }
    part.ok = true;
    part.lo = lo;
    part.hi = hi;
    part.versions = snap.version_text(rollup, lo, hi);
  }

  // Forgets the held raw buckets of the minutes [lo, hi).
  void erase_raw(std::int64_t lo, std::int64_t hi) {
    for (auto d = raw.begin(); d != raw.end();) {
      for (auto h = d->second.begin(); h != d->second.end();) {
        h->second.erase(h->second.lower_bound(lo), h->second.lower_bound(hi));
        h = h->second.empty() ? d->second.erase(h) : std::next(h);
      }
      d = d->second.empty() ? raw.erase(d) : std::next(d);
    }
  }

  // Adds grouped raw rows (household, device, minute, sums...) to the held raw buckets.
  void fold_raw(const pqxx::result& r) {
    for (auto row : r) {
      add_to(raw[row[1].as<std::string>()][row[0].as<std::string>()],
             bucket_of(row, 3, row[2].as<std::int64_t>(), true));
      ++last.raw_rows;
    }
  }

  // The rollup-derived part of a snapshot: household 5 min rows, and device 1 min rows for
  // the devices (from device_lo), their registered households' 1 min buckets (from
  // household_1m_lo) and 5 min buckets (from the household watermark on).
  void build_base(const live_snapshot& snap, std::int64_t wm5, bool hh_ok) {
    std::unordered_map<std::string, bucket_map> dev, hh5, hh1;
    if (hh_ok)
      for (auto& [id, m] : household_5m.rows) {
        auto& into = hh5[id];
        for (auto& [t, b] : m)
          add_to(into, b);
      }
    // The households' share by the devices' registered households (as the feed and the
    // device read path assume); devices no longer registered are left out.
    for (auto& [id, m] : device_1m.rows) {
      auto reg = device_household.find(id);
      if (reg == device_household.end())
        continue;
      bucket_map* d = nullptr;
      bucket_map* h1 = nullptr;
      bucket_map* h5 = nullptr;
      for (auto& [t, b] : m) {
        if (t >= snap.device_lo)
          add_to(d ? *d : *(d = &dev[id]), b);
        if (t >= snap.household_1m_lo)
          add_to(h1 ? *h1 : *(h1 = &hh1[reg->second]), b);
        if (hh_ok && t >= wm5) {
          auto c = b;
          c.start = floor_to(t, five_min);
          c.power_max.reset();
          add_to(h5 ? *h5 : *(h5 = &hh5[reg->second]), c);
        }
      }
    }
    base_dev.clear();
    base_hh1.clear();
    base_hh5.clear();
    base_count = flatten(dev, base_dev) + flatten(hh1, base_hh1) + flatten(hh5, base_hh5);
  }

  live_snapshot cycle(session& s, std::int64_t grace_us);
};

live_tail_reader::live_tail_reader() : impl_(std::make_unique<impl>()) {}
live_tail_reader::~live_tail_reader() = default;
void live_tail_reader::reset() { impl_->reset(); }
const live_tail_reader::stats& live_tail_reader::last() const { return impl_->last; }

live_snapshot live_tail_reader::cycle(session& s, std::int64_t grace_us) {
  try {
    return impl_->cycle(s, grace_us);
  } catch (...) {
    // Half-applied changes must not survive: the next cycle reads everything again.
    impl_->reset();
    throw;
  }
}

live_snapshot read_live_tail(session& s, std::int64_t grace_us) {
  live_tail_reader fresh;
  return fresh.cycle(s, grace_us);
}

live_snapshot live_tail_reader::impl::cycle(session& s, std::int64_t grace_us) {
  last = {};
  const auto started = std::chrono::steady_clock::now();
  auto ms_since = [](std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
  };
  live_snapshot snap;
  read_tx tx{s.conn()};
  // The clock, every watermark, and device_1m's log bookkeeping: the last batch of log rows a
  // refresh consumed, the newest batch pruned, and unaccounted log removals (migration 0017).
  std::int64_t batch_1m = -1, pruned_1m = 0, resets_1m = -1;
  for (auto row : tx.exec("SELECT " + us("now()") + ", name, " + us("watermark") +
                          ", consumed_batch, consumed_pruned, log_resets FROM rollup_state")) {
    snap.db_now = row[0].as<std::int64_t>();
    auto name = row[1].as<std::string>();
    if (name == live_tail_rollup) {
      batch_1m = row[3].as<std::int64_t>();
      pruned_1m = row[4].as<std::int64_t>();
      resets_1m = row[5].as<std::int64_t>();
    }
    if (row[2].is_null())
      continue;
    auto wm = row[2].as<std::int64_t>();
    if (name == live_tail_rollup)
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
  // The device list only when it changed (count and a checksum of every (id, household)
  // pair: a new device, a deleted one or one moved to another household changes it).
  {
    auto sum = tx.exec("SELECT count(*), coalesce(sum(hashtext(id::text || '/' || "
                       "household_id::text)::bigint), 0)::text FROM devices");
    ++snap.queries;
    auto count = sum[0][0].as<std::int64_t>();
    auto check = sum[0][1].as<std::string>();
    if (!devices_ok || count != device_count || check != device_sum) {
      device_household.clear();
      households.clear();
      for (auto row : tx.exec("SELECT id::text, household_id::text FROM devices")) {
        auto hh = row[1].as<std::string>();
        households.insert(hh);
        device_household.emplace(row[0].as<std::string>(), std::move(hh));
      }
      ++snap.queries;
      auto by_household =
          std::make_shared<std::unordered_map<std::string, std::vector<std::string>>>();
      for (auto& [device, hh] : device_household)
        (*by_household)[hh].push_back(device);
      for (auto& [hh, list] : *by_household)
        std::sort(list.begin(), list.end());
      household_devices = std::move(by_household);
      devices_ok = true;
      ++devices_generation;
      device_count = count;
      device_sum = check;
    }
    snap.device_household = device_household;
    snap.households = households;
    snap.household_devices = household_devices;
  }

  // Without a device 1 min watermark close to now there is no cheap tail: the live path is
  // off (readers use the database) until the refresh catches up.
  if (!snap.wm_device_1m || now - *snap.wm_device_1m > live_max_raw_span) {
    raw_ok = false;
    raw.clear();
    seen.clear();
    clear(device_1m);
    clear(household_5m);
    tx.commit();
    return snap;
  }
  const auto wm1 = *snap.wm_device_1m;
  // The alert feed's look-back: from the last closed 5 min bucket on.
  const auto lookback = floor_to(now - grace_us, five_min) - five_min;
  snap.device_lo = std::min(floor_to(wm1, five_min), lookback);
  snap.household_1m_lo = lookback;
  const bool hh_ok = snap.wm_household_5m && wm1 - *snap.wm_household_5m <= 3 * hour &&
                     *snap.wm_household_5m <= wm1;
  std::int64_t wm5 = hh_ok ? *snap.wm_household_5m : wm1;
  // At least live_settled_overlap below the watermark, also just after it crossed an hour:
  // settled parts extend from these rows instead of being read again (cache/settled_series).
  snap.household_lo =
      std::min({floor_to(wm5, hour), floor_to(wm5 - live_settled_overlap, five_min), lookback});

  // Household 5 min rollup rows of the tail's first hour (settled, but the live part of an
  // hourly answer starts at the hour).
  if (hh_ok)
    read_part(tx, household_5m, snap, "household_5m",
              "SELECT household_id::text, " + us("bucket") +
                  ", energy_wh_sum, power_w_sum, power_w_count FROM rollup_household_5m "
                  "WHERE bucket >= $1::timestamptz AND bucket < $2::timestamptz",
              false, snap.household_lo, wm5, snap);
  else
    clear(household_5m);
  // Device 1 min rollup rows from the earliest bound anyone needs up to its watermark.
  const auto dev_from = std::min(snap.device_lo, wm5);
  read_part(tx, device_1m, snap, "device_1m",
            "SELECT device_id::text, " + us("bucket") +
                ", energy_wh_sum, power_w_sum, power_w_count, power_w_max FROM rollup_device_1m "
                "WHERE bucket >= $1::timestamptz AND bucket < $2::timestamptz",
            true, dev_from, wm1, snap);

  // Raw rows above the device 1 min watermark: what committed since the last cycle.
  // Grouped by the uuids, converted to text only for the result: grouping by text costs
  // PostgreSQL about twice as much.
  auto raw_sql = [](const std::string& from_where) {
    return "SELECT household_id::text, device_id::text, " + us("b") +
           ", e, p, c, m FROM (SELECT household_id, device_id, date_bin('1 minute', ts, "
           "'2000-01-01 00:00:00+00') AS b, sum(energy_wh) AS e, sum(power_w) AS p, "
           "count(power_w) AS c, max(power_w) AS m FROM telemetry " +
           from_where + " GROUP BY 1, 2, 3) g";
  };
  // Whether the held raw buckets can be carried forward: the reader saw the last snapshot's
  // log rows, no log row went without being accounted for, and every log row a device_1m
  // refresh consumed since then is still kept in live_tail_consumed (batches (batch,
  // batch_1m]; a batch is numbered by its refresh's txid, in commit order, and pruned after
  // ten minutes). A watermark that moved on only drops the buckets it passed: their minutes
  // are now read from the rollup (read_part above), as a whole read would.
  const bool incremental =
      raw_ok && resets_1m == resets && wm1 >= raw_wm &&
      (batch_1m == batch || (batch > 0 && batch_1m > batch && pruned_1m <= batch));
  std::unordered_set<std::string> log_rows;
  std::vector<std::string> insert_xids;
  std::int64_t ins_lo = INT64_MAX, ins_hi = INT64_MIN;
  std::vector<std::pair<std::int64_t, std::int64_t>> reread;  // minutes [lo, hi)
  // A log row is known by its xmin and contents, not its ctid: VACUUM FULL or CLUSTER on the
  // log moves every row (new ctids, same xmin), which would make every insert look new and
  // fold its rows a second time. Rows of one xmin commit together, so two identical ones
  // (one transaction logging the same range twice) are one: the fold is per xmin and a
  // re-read of the same minutes is the same. (A copy under a new xmin, e.g. pg_repack, only
  // re-reads: no telemetry row carries that xmin.)
  // With them, the rows the refreshes since the last snapshot consumed, under the same
  // identity (their original xmin): one the reader saw in the log last time is not new; one
  // it never saw committed after its last snapshot (before it, it would have been in the log
  // then: only a refresh of a later batch, or an unaccounted removal, takes rows out).
  for (auto row : tx.exec_params(
           "SELECT false, xmin::text, " + us("lo") + ", " + us("hi") +
               ", inserted FROM rollup_invalidations WHERE rollup = $1 UNION ALL SELECT true, "
               "u.x::text, " + us("u.lo") + ", " + us("u.hi") +
               ", u.ins FROM live_tail_consumed c, unnest(c.xids, c.los, c.his, c.inserted) "
               "AS u(x, lo, hi, ins) WHERE c.rollup = $1 AND c.batch > $2 AND c.batch <= $3",
           live_tail_rollup, incremental ? batch : batch_1m, batch_1m)) {
    auto id = row[1].as<std::string>() + '/' + row[2].c_str() + '/' + row[3].c_str() +
              (row[4].as<bool>() ? "/i" : "/o");
    const bool consumed = row[0].as<bool>();
    if (incremental && !seen.count(id)) {
      ++last.statements;
      if (consumed)
        ++last.consumed;
      auto lo = row[2].as<std::int64_t>();
      auto hi = row[3].as<std::int64_t>();  // inclusive
      if (hi >= wm1) {
        if (row[4].as<bool>()) {
          insert_xids.push_back(row[1].as<std::string>());
          ins_lo = std::min(ins_lo, lo);
          ins_hi = std::max(ins_hi, hi);
        } else {
          reread.emplace_back(floor_to(std::max(lo, wm1), minute), floor_to(hi, minute) + minute);
        }
      }
    }
    if (!consumed)
      log_rows.insert(std::move(id));
  }
  ++snap.queries;
  if (!incremental) {
    raw.clear();
    fold_raw(tx.exec_params(raw_sql("WHERE ts >= $1::timestamptz"), ts(wm1)));
    ++snap.queries;
    last.full_raw = true;
  } else {
    if (wm1 > raw_wm)
      erase_raw(INT64_MIN, wm1);
    // A plain INSERT's rows carry its xmin (the log row was written by the same statement, in
    // the same (sub)transaction) and lie inside its logged range. Rows of the same xmin that
    // an UPDATE wrote are folded here too, but the UPDATE's own log row re-reads their minutes
    // below, which replaces whatever was folded there.
    if (!insert_xids.empty()) {
      std::sort(insert_xids.begin(), insert_xids.end());
      insert_xids.erase(std::unique(insert_xids.begin(), insert_xids.end()), insert_xids.end());
      std::string arr = "{";
      for (std::size_t i = 0; i < insert_xids.size(); ++i)
        arr += (i ? "," : "") + insert_xids[i];
      arr += "}";
      fold_raw(tx.exec_params(raw_sql("WHERE ts >= $1::timestamptz AND ts <= $2::timestamptz "
                                      "AND xmin = ANY($3::xid[])"),
                              ts(std::max(ins_lo, wm1)), ts(ins_hi), arr));
      ++snap.queries;
    }
    if (!reread.empty()) {
      std::sort(reread.begin(), reread.end());
      std::vector<std::pair<std::int64_t, std::int64_t>> merged;
      for (auto& r : reread)
        if (!merged.empty() && r.first <= merged.back().second)
          merged.back().second = std::max(merged.back().second, r.second);
        else
          merged.push_back(r);
      last.reread_ranges = merged.size();
      std::vector<std::int64_t> los, his;
      for (auto& [lo, hi] : merged) {
        erase_raw(lo, hi);
        los.push_back(lo);
        his.push_back(hi);
      }
      fold_raw(tx.exec_params(raw_sql("JOIN unnest($1::bigint[], $2::bigint[]) AS r(lo, hi) ON "
                                      "ts >= timestamptz 'epoch' + r.lo * interval '1 microsecond' "
                                      "AND ts < timestamptz 'epoch' + r.hi * interval '1 microsecond'"),
                              bigint_list(los), bigint_list(his)));
      ++snap.queries;
    }
  }
  tx.commit();
  raw_ok = true;
  raw_wm = wm1;
  batch = batch_1m;
  resets = resets_1m;
  seen = std::move(log_rows);
  last.read_ms = ms_since(started);
  const auto build_started = std::chrono::steady_clock::now();

  // The snapshot, built from what is held (the same merge the whole-tail read did): the
  // rollup-derived base (rebuilt only when it changed), then the raw buckets laid over it.
  base_key key{device_1m.generation, household_5m.generation, devices_generation,
               snap.device_lo, snap.household_1m_lo, snap.household_lo, wm5, hh_ok};
  if (!base_ok || !(key == base_at)) {
    build_base(snap, wm5, hh_ok);
    base_at = key;
    base_ok = true;
  }
  snap.device_1m = base_dev;
  snap.household_1m = base_hh1;
  if (hh_ok)
    snap.household_5m = base_hh5;
  snap.bucket_count = base_count;
  for (auto& [id, by_household] : raw) {
    // A device's buckets take only its rows stamped with its registered household, as the
    // database path reads them (raw_key_filter, top's household filter): rows stamped with
    // another (a device moved, a writer's mistake) count for that household only.
    auto reg = device_household.find(id);
    std::vector<live_bucket>* d = nullptr;
    for (auto& [hh, m] : by_household) {
      std::vector<live_bucket>* h1 = nullptr;
      std::vector<live_bucket>* h5 = hh_ok ? &snap.household_5m[hh] : nullptr;
      const bool own = reg != device_household.end() && reg->second == hh;
      for (auto& [t, b] : m) {
        if (own)
          snap.bucket_count += merge_into(d ? *d : *(d = &snap.device_1m[id]), b);
        if (t >= snap.household_1m_lo)
          snap.bucket_count += merge_into(h1 ? *h1 : *(h1 = &snap.household_1m[hh]), b);
        if (h5) {
          auto c = b;
          c.start = floor_to(t, five_min);
          c.power_max.reset();
          snap.bucket_count += merge_into(*h5, c);
        }
      }
    }
  }
  snap.devices_ok = true;
  snap.households_ok = hh_ok;
  last.build_ms = ms_since(build_started);
  return snap;
}

settled_part settled_energy(session& s, const std::string& household, std::int64_t step,
                            std::int64_t lo, std::int64_t hi) {
  pqxx::nontransaction q{s.conn()};
  // One statement: the versions and the rows come from the same snapshot, so the body is
  // stored under the version of exactly the rows it was computed from.
  // At 5 min steps a row is a bucket: no grouping (the sum of one value is that value; 0.2 vs
  // 0.34 ms). $4 is referenced only so that both texts take the same parameters.
  const bool by_row = step == 5 * 60 * micros_per_second;
  const std::string rows =
      by_row ? "SELECT " + us("bucket") +
                   " AS b, energy_wh_sum AS e FROM rollup_household_5m WHERE household_id = "
                   "$1::uuid AND bucket >= $2::timestamptz AND bucket < $3::timestamptz "
                   "AND $4::interval IS NOT NULL"
             : "SELECT " + us("date_bin($4::interval, bucket, '2000-01-01 00:00:00+00')") +
                   " AS b, sum(energy_wh_sum) AS e FROM rollup_household_5m WHERE household_id "
                   "= $1::uuid AND bucket >= $2::timestamptz AND bucket < $3::timestamptz "
                   "GROUP BY 1";
  // The versions travel once, in a first row of their own: joined onto every row, their text
  // (up to ~20 bytes per hour) came back 288 times for a day of 5 min buckets: ~60 kB from
  // PostgreSQL, ~17 kB now (measured with perf trace).
  auto sql =
      "WITH v AS (SELECT coalesce(string_agg(" + us("hour") +
      "::text || ':' || gen::text, ',' ORDER BY hour), '') AS v FROM rollup_versions "
      "WHERE rollup = 'household_5m' AND hour >= date_bin('1 hour', $2::timestamptz, "
      "'2000-01-01 00:00:00+00') AND hour < $3::timestamptz) "
      "SELECT 0 AS k, v.v, NULL::bigint AS b, NULL::double precision AS e FROM v "
      "UNION ALL SELECT 1, NULL, s.b, s.e FROM (" + rows + ") s ORDER BY k, b";
  const char* name = by_row ? "live_settled_energy_5m" : "live_settled_energy";
  s.prepare(name, sql);
  auto r = q.exec_prepared(name, household, ts(lo), ts(hi),
                           std::to_string(step / micros_per_second) + " seconds");
  settled_part out;
  for (auto row : r) {
    if (row[0].as<int>() == 0) {
      out.versions = row[1].as<std::string>();
      continue;
    }
    out.points.emplace_back(row[2].as<std::int64_t>(), opt_double(row[3]));
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
  metrics::gauge& read = metrics::global().get_gauge(
      "joule_live_tail_last_read_seconds",
      "Latest live tail cycle: its read transaction (PostgreSQL and receiving rows)");
  metrics::gauge& build = metrics::global().get_gauge(
      "joule_live_tail_last_build_seconds",
      "Latest live tail cycle: building the snapshot from the held buckets (on the tail's own "
      "worker thread)");
  metrics::counter& raw_rows = metrics::global().get_counter(
      "joule_live_tail_raw_rows_total",
      "Grouped raw rows the live tail received (folded new writes and whole re-reads)");
  metrics::counter& rollup_rows = metrics::global().get_counter(
      "joule_live_tail_rollup_rows_total",
      "Rollup rows the live tail received (read once as the watermarks pass them)");
  metrics::counter& full_raw = metrics::global().get_counter(
      "joule_live_tail_full_reads_total",
      "Live tail cycles that re-read the whole raw tail (first cycle, after a failure, a tail "
      "fallen behind, or log rows removed by hand)");
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
  // Reading, folding and building the snapshot all run here, on the tail's own detached
  // worker; the actor only swaps the pointer.
  job.run = [out, grace = st.cfg.grace_us, reader = st.reader,
             retired = std::move(st.retired)](session& s) mutable {
    // Freed here, on the tail's own thread, once nobody else holds them (a poll or the alert
    // feed may still hold a snapshot as the next one lands: its last release would free a few
    // hundred thousand buckets on a CAF worker serving polls). Nobody can take a new
    // reference to a replaced snapshot, so a count of 1 is final.
    std::vector<live_snapshot_ptr> held;
    for (auto& p : retired)
      if (p.use_count() > 1)
        held.push_back(std::move(p));
    // The count is read relaxed; the fence orders the readers' releases (acq_rel) before the
    // frees below.
    std::atomic_thread_fence(std::memory_order_acquire);
    retired.clear();
    retired.swap(held);
    *out = reader->cycle(s, grace);
    auto& l = reader->last();
    m().raw_rows.inc(l.raw_rows);
    m().rollup_rows.inc(l.rollup_rows);
    if (l.full_raw)
      m().full_raw.inc();
    m().read.set(l.read_ms / 1000.0);
    m().build.set(l.build_ms / 1000.0);
    return std::any{std::move(retired)};
  };
  auto started = std::chrono::steady_clock::now();
  self->request(st.worker, caf::infinite, std::move(job))
      .then(
          [self, out, started](db_done& d) {
            auto& st = self->state;
            if (auto* held = std::any_cast<std::vector<live_snapshot_ptr>>(&d.value))
              st.retired = std::move(*held);
            st.running = false;
            ++st.cycles;
            out->seq = ++st.seq;
            out->taken = std::chrono::steady_clock::now();
            st.last_duration_ms =
                std::chrono::duration<double, std::milli>(out->taken - started).count();
            st.last_buckets = out->bucket_count;
            // The job has finished: the reader is idle until this actor sends the next one.
            st.last_read_ms = st.reader->last().read_ms;
            st.last_build_ms = st.reader->last().build_ms;
            st.last_full_raw = st.reader->last().full_raw;
            m().queries.inc(static_cast<std::uint64_t>(out->queries));
            m().last_cycle.set(st.last_duration_ms / 1000.0);
            m().buckets.set(static_cast<double>(out->bucket_count));
            if (st.cfg.holder)
              if (auto old = st.cfg.holder->set(out))
                st.retired.push_back(std::move(old));
          },
          [self](caf::error& err) {
            auto& st = self->state;
            st.running = false;
            ++st.cycles;
            ++st.failures;
            m().failures.inc();
            // Readers must not join with a tail that stopped moving.
            if (st.cfg.holder)
              if (auto old = st.cfg.holder->set(nullptr))
                st.retired.push_back(std::move(old));
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
               ",\"read_ms\":" + std::to_string(st.last_read_ms) +
               ",\"build_ms\":" + std::to_string(st.last_build_ms) +
               ",\"full_raw_read\":" + (st.last_full_raw ? "true" : "false") +
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
