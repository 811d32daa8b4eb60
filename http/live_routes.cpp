#include "http/live_routes.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>

#include "cache/settled_keys.hpp"
#include "core/interfaces.hpp"
#include "core/timefmt.hpp"
#include "db/live_parts.hpp"
#include "http/cache_ask.hpp"
#include "http/errors.hpp"
#include "http/live_payload.hpp"
#include "http/render.hpp"

namespace joule::http {

std::chrono::steady_clock::duration live_max_age(const route_env& env) {
  // A failed cycle withdraws the snapshot at once (PostgreSQL unreachable), so this only
  // bounds a tail that is slow under load; an older snapshot still answers truthfully (its
  // fresh_as_of is its own). 5 s keeps the 10 s freshness target.
  return std::max<std::chrono::steady_clock::duration>(env.settings.live_interval * 5,
                                                       std::chrono::seconds(5));
}

std::chrono::milliseconds settled_ttl(const route_env& env) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(env.settings.cache_ttl) * 10;
}

void lower_to(std::int64_t& fresh, std::optional<std::int64_t> cap) {
  if (cap)
    fresh = std::min(fresh, *cap);
}

namespace {

response ok(std::string body, cache_outcome outcome) {
  response r;
  r.body = std::move(body);
  r.headers.emplace_back("X-Cache", to_string(outcome));
  return r;
}

} // namespace

std::string answer_key(const route_env& env, const char* route, const db::live_snapshot& snap,
                       const std::string& query) {
  if (!env.answers)
    return {};
  return cache::live_answer_memo::key(route, snap.seq, snap.db_now, query);
}

bool answer_from_memo(caf::event_based_actor* self, const route_env& env, const std::string& key,
                      reply_fn& reply) {
  if (key.empty() || !env.answers)
    return false;
  auto body = env.answers->find(key, self->clock().now());
  if (!body)
    return false;
  reply(ok(std::move(*body), cache_outcome::hit));
  return true;
}

void keep_answer(caf::event_based_actor* self, const route_env& env, const std::string& key,
                 const std::string& body) {
  if (!key.empty() && env.answers)
    env.answers->put(key, body, self->clock().now());
}

namespace {

using env_ptr = std::shared_ptr<const route_env>;

constexpr std::int64_t minute = 60 * micros_per_second;
constexpr std::int64_t hour = 60 * minute;

// --- a settled part carried forward in memory

using part = live_part;

// What a device answer needs to get its settled part. What the functions read of the snapshot
// is a slice of it (see slice_of), captured by them: they run on the session actor's thread,
// possibly after a DB round trip, and must not keep a whole snapshot alive meanwhile.
struct part_plan {
  std::string rollup;  // key prefix: announced changes of this rollup evict the part early
  std::string id;      // device or household
  std::string format;  // part of every key: payloads of another format never match
  const char* label = "";
  std::int64_t step = 0;
  std::int64_t lo = 0;       // start of the part (hour aligned)
  std::int64_t db_hi = 0;    // a part read from the database ends here (its key)
  std::int64_t ext_hi = 0;   // the snapshot's rollup buckets carry it up to here
  std::int64_t live_lo = 0;  // the snapshot holds buckets from here on
  std::function<std::string(std::int64_t lo, std::int64_t hi)> versions;
  /// The payload with the snapshot's buckets of [from, to) added.
  std::function<std::string(std::string payload, std::int64_t from, std::int64_t to)> extend;
  /// [lo, db_hi) from the database, with the versions read with it (DB worker thread).
  std::function<part(db::session&)> read;
  /// The payload of a part starting an hour earlier, without that hour (empty: cannot).
  std::function<std::string(const std::string& payload, std::int64_t lo)> cut;
  /// Whether a payload found in memory or Redis is well formed (else: a miss).
  bool (*well_formed)(const std::string& payload) = nullptr;
};

using finish_fn = std::function<void(const part&, cache_outcome)>;

// The subject's part as carried forward: one entry per (subject, step, start), whatever the
// window's end and the watermark.
std::string memo_key(const part_plan& p, std::int64_t lo) {
  return cache::settled_key(p.rollup, p.id, p.step, lo, lo + 26 * hour, "memo|" + p.format);
}

// The subject's memo starting at `lo` if the snapshot can carry it: the versions of its rows
// are the snapshot's, and the snapshot holds buckets from where it ends.
std::optional<part> usable_memo(const env_ptr& env, const part_plan& plan, std::int64_t lo,
                                caf::actor_clock::time_point now) {
  auto body = env->settled->find(memo_key(plan, lo), now);
  if (!body)
    return std::nullopt;
  auto p = decode_part(*body);
  if (!p || p->lo != lo || p->hi < plan.live_lo || !plan.well_formed(p->payload) ||
      p->versions != plan.versions(p->lo, p->hi))
    return std::nullopt;
  return p;
}

// Extends `p` with the snapshot's settled buckets up to ext_hi when the snapshot holds the
// continuation, keeps it as the subject's memo, and answers.
void carry(caf::event_based_actor* self, const env_ptr& env, const part_plan& plan, part p,
           bool store, cache_outcome outcome, const finish_fn& finish) {
  if (p.hi >= plan.live_lo && p.hi < plan.ext_hi) {
    p.payload = plan.extend(std::move(p.payload), p.hi, plan.ext_hi);
    p.hi = plan.ext_hi;
    p.versions = plan.versions(p.lo, p.hi);
    store = true;
  }
  if (store && p.hi >= plan.live_lo)
    env->settled->put(memo_key(plan, plan.lo), encode_part(p), self->clock().now(),
                      settled_ttl(*env));
  finish(p, outcome);
}

// Memory (the memo, then the part under its versioned key), Redis (the same key on every
// instance), then the database; the broker's single-flight applies as for energy.
void with_settled(caf::event_based_actor* self, const env_ptr& env,
                  std::shared_ptr<const part_plan> plan, finish_fn finish, reply_fn reply) {
  const auto now = self->clock().now();
  if (auto p = usable_memo(env, *plan, plan->lo, now))
    return carry(self, env, *plan, std::move(*p), false, cache_outcome::hit, finish);
  // The window's start moved to the next hour (every subject's at once, at the top of the
  // hour): the previous memo without its first hour, instead of a burst of queries.
  if (plan->cut)
    if (auto p = usable_memo(env, *plan, plan->lo - hour, now); p && p->hi >= plan->lo)
      return carry(self, env, *plan,
                   part{plan->lo, p->hi, plan->versions(plan->lo, p->hi),
                        plan->cut(p->payload, plan->lo)},
                   true, cache_outcome::hit, finish);
  if (plan->db_hi <= plan->lo)
    return carry(self, env, *plan,
                 part{plan->lo, plan->lo, plan->versions(plan->lo, plan->lo), {}}, true,
                 cache_outcome::hit, finish);
  const auto expected = plan->versions(plan->lo, plan->db_hi);
  const auto key = cache::settled_key(plan->rollup, plan->id, plan->step, plan->lo, plan->db_hi,
                                      expected + "|" + plan->format);
  if (auto body = env->settled->find(key, now); body && plan->well_formed(*body))
    return carry(self, env, *plan, part{plan->lo, plan->db_hi, expected, *body}, true,
                 cache_outcome::hit, finish);
  auto pool = env->registry->get<db_pool_actor>();
  if (!pool)
    return reply(starting_response());
  auto cache = env->registry->get<cache_actor>();
  auto compute = [self, env, pool, cache, plan, key, expected, finish, reply](cache_outcome outcome) {
    db_job job;
    job.label = plan->label;
    job.timeout = env->settings.db_request_deadline;
    job.run = [plan](db::session& s) -> std::any { return plan->read(s); };
    self->request(pool, caf::infinite, std::move(job))
        .then(
            [self, env, cache, plan, key, expected, finish, reply, outcome](db_done& d) {
              auto* p = std::any_cast<part>(&d.value);
              if (!p) {
                if (cache)
                  self->send(cache, drop_atom::value, key,
                             make_error(errc::internal, "internal", "internal error"));
                return reply(error_response(500, "internal", "internal error"));
              }
              if (cache)
                self->send(cache, put_atom::value, key, p->payload, false);
              if (p->versions == expected)
                return carry(self, env, *plan, *p, true, outcome, finish);
              // A refresh landed since the snapshot: kept under the versions it was read at
              // (a key of its own), and joined with the snapshot, which stays truthful (its
              // rows reflect at least what the snapshot's do), but not carried forward with
              // the snapshot's older buckets. (A carried part lives in memory as the memo.)
              env->settled->put(cache::settled_key(plan->rollup, plan->id, plan->step, plan->lo,
                                                   plan->db_hi, p->versions + "|" + plan->format),
                                p->payload, self->clock().now(), settled_ttl(*env));
              finish(*p, outcome);
            },
            drop_and_fail(self, cache, key, reply));
  };
  auto found = [self, env, plan, key, expected, finish, compute](cache_lookup& l) {
    // Truncated or corrupt text under the key (Redis is shared): read the part again, and
    // put it back under the key in place of the bad text.
    if (!plan->well_formed(l.body))
      return compute(cache_outcome::miss);
    carry(self, env, *plan, part{plan->lo, plan->db_hi, expected, l.body}, true, l.outcome,
          finish);
  };
  ask_cache(self, cache, key, found, compute, reply);
}

// The snapshot's buckets of `id` in [from, to), or none.
template <class Visit>
void buckets_of(const db::live_snapshot& snap, const std::string& id, std::int64_t from,
                std::int64_t to, Visit visit) {
  auto it = snap.device_1m.find(id);
  if (it == snap.device_1m.end())
    return;
  auto& v = it->second;
  auto b = std::lower_bound(v.begin(), v.end(), from,
                            [](const db::live_bucket& x, std::int64_t t) { return x.start < t; });
  for (; b != v.end() && b->start < to; ++b)
    visit(*b);
}

// --- device power

// What an answer's functions read of `snap`: the versions of `rollups` from the hour before
// `lo` on (a memo may start there), and the device buckets of `ids` in [lo, hi). A few kB,
// where the snapshot is tens of MiB at 50k devices: a poll waiting for PostgreSQL or Redis
// (up to db.request_deadline) holds only this, and the snapshot is freed when the tail
// replaces it.
std::shared_ptr<const db::live_snapshot> slice_of(const db::live_snapshot& snap,
                                                  std::initializer_list<const char*> rollups,
                                                  const std::vector<std::string>& ids,
                                                  std::int64_t lo, std::int64_t hi) {
  auto out = std::make_shared<db::live_snapshot>();
  for (const char* r : rollups)
    if (auto it = snap.versions.find(r); it != snap.versions.end())
      out->versions.emplace(r, std::map<std::int64_t, std::int64_t>(
                                   it->second.lower_bound(floor_to(lo - hour, hour)),
                                   it->second.end()));
  for (auto& id : ids) {
    std::vector<db::live_bucket> kept;
    buckets_of(snap, id, lo, hi, [&](const db::live_bucket& b) { kept.push_back(b); });
    if (!kept.empty())
      out->device_1m.emplace(id, std::move(kept));
  }
  return out;
}

// The snapshot's buckets of a device in [from, to) merged into step buckets, as the database
// path merges rollup rows and raw rows (avg = sum / count, max of maxima).
std::vector<db::power_point> snapshot_points(const db::live_snapshot& snap, const std::string& id,
                                             std::int64_t step, std::int64_t from,
                                             std::int64_t to) {
  std::vector<db::power_point> out;
  db::live_bucket acc;
  bool open = false;
  auto close = [&] {
    if (open)
      out.push_back({acc.start,
                     acc.power_count > 0 && acc.power_sum
                         ? std::optional<double>(*acc.power_sum / static_cast<double>(acc.power_count))
                         : std::nullopt,
                     acc.power_max});
  };
  buckets_of(snap, id, from, to, [&](const db::live_bucket& b) {
    auto t = floor_to(b.start, step);
    if (!open || acc.start != t) {
      close();
      acc = db::live_bucket{};
      acc.start = t;
      open = true;
    }
    acc.add(b);
  });
  close();
  return out;
}

} // namespace

bool live_power(caf::event_based_actor* self, const env_ptr& env, const db::series_query& q,
                const std::string& step, const auth::identity& who,
                const db::live_snapshot_ptr& snap, reply_fn& reply) {
  if (!snap->devices_ok || !snap->wm_device_1m || (q.step != minute && q.step != 5 * minute))
    return false;
  // A device the snapshot does not know, or one the caller may not see: the database path
  // answers it (not found, exactly as before).
  auto dev = snap->device_household.find(q.id);
  if (dev == snap->device_household.end() || (who.restricted() && !who.may_see(dev->second)))
    return false;
  const auto wm1 = *snap->wm_device_1m;
  auto plan = std::make_shared<part_plan>();
  plan->rollup = "device_1m";
  plan->id = q.id;
  plan->format = "power-1";
  plan->label = "power.settled";
  plan->step = q.step;
  // Parts start at the hour, so the default window (moving every minute) keeps its part.
  plan->lo = floor_to(q.start, hour);
  plan->ext_hi = std::clamp(floor_to(wm1, q.step), plan->lo, q.end);
  plan->live_lo = snap->device_lo;
  plan->db_hi = std::clamp(ceil_to(snap->device_lo, q.step), plan->lo, plan->ext_hi);
  if (plan->lo < snap->versions_from || (plan->db_hi < q.end && plan->db_hi < snap->device_lo))
    return false;
  // A late write pending in the device's rollup range: the database path serves it exactly.
  if (snap->late_touches("device_1m", plan->lo, std::min(wm1, q.end), dev->second))
    return false;
  // Answerable from the snapshot: a poll of the same window on it shares the answer. The
  // caller's households do not change a device answer it may see (checked above).
  auto memo = answer_key(*env, "power", *snap,
                         q.id + "|" + std::to_string(q.start) + "|" + std::to_string(q.end) +
                             "|" + step);
  if (answer_from_memo(self, *env, memo, reply))
    return true;
  auto fresh = snap->db_now;
  lower_to(fresh, snap->fresh_cap("device_1m", q.start, std::min(wm1, q.end)));
  // Everything below reads `slice`, never `snap`: every range they read lies in
  // [plan->lo, q.end) (versions: from the hour before).
  auto slice = slice_of(*snap, {"device_1m"}, {q.id}, plan->lo, q.end);
  plan->versions = [slice](std::int64_t lo, std::int64_t hi) {
    return slice->version_text("device_1m", lo, hi);
  };
  plan->extend = [slice, id = q.id, step = q.step](std::string payload, std::int64_t from,
                                                   std::int64_t to) {
    append_points(payload, snapshot_points(*slice, id, step, from, to));
    return payload;
  };
  plan->read = [id = q.id, step = q.step, lo = plan->lo, hi = plan->db_hi](db::session& s) {
    auto r = db::settled_power(s, id, step, lo, hi);
    part p{lo, hi, std::move(r.versions), {}};
    append_points(p.payload, r.points);
    return p;
  };
  plan->cut = [](const std::string& payload, std::int64_t lo) {
    std::vector<db::power_point> kept;
    for (auto& pt : parse_points(payload).value_or(std::vector<db::power_point>{}))
      if (pt.t >= lo)
        kept.push_back(pt);
    std::string out;
    append_points(out, kept);
    return out;
  };
  plan->well_formed = points_well_formed;
  auto finish = [self, env, memo, slice, q, step, fresh, reply](const part& p,
                                                                 cache_outcome outcome) {
    db::series_result r;
    r.meta.found = true;
    r.meta.fresh_as_of = fresh;
    r.meta.live = true;
    for (auto& pt : parse_points(p.payload).value_or(std::vector<db::power_point>{}))
      if (pt.t >= q.start && pt.t < q.end)
        r.series.push_back({pt.t, pt.avg, pt.max});
    for (auto& pt : snapshot_points(*slice, q.id, q.step, std::max(p.hi, q.start), q.end))
      r.series.push_back({pt.t, pt.avg, pt.max});
    auto body = render_power(q, step, r);
    keep_answer(self, *env, memo, body);
    reply(ok(std::move(body), outcome));
  };
  with_settled(self, env, std::move(plan), std::move(finish), reply);
  return true;
}

namespace {

// --- top devices

// Adds the snapshot's energy of `devices` in [from, to) to their hours.
void add_snapshot_energy(hourly& into, const db::live_snapshot& snap,
                         const std::vector<std::string>& devices, std::int64_t from,
                         std::int64_t to) {
  for (auto& d : devices)
    buckets_of(snap, d, from, to, [&](const db::live_bucket& b) {
      if (!b.energy_sum)
        return;
      auto [it, added] = into[floor_to(b.start, hour)].emplace(d, *b.energy_sum);
      if (!added)
        it->second += *b.energy_sum;
    });
}

} // namespace

bool live_top(caf::event_based_actor* self, const env_ptr& env, const db::top_query& q,
              const db::live_snapshot_ptr& snap, reply_fn& reply) {
  if (!snap->devices_ok || !snap->wm_device_1m || !snap->household_devices)
    return false;
  auto hd = snap->household_devices->find(q.household_id);
  if (hd == snap->household_devices->end() || q.start < snap->versions_from)
    return false;
  const auto& devices = hd->second;
  const auto wm1 = *snap->wm_device_1m;
  // Pending late writes below a watermark touching the household: the database path.
  if (snap->late_touches("device_1h", q.start, q.end, q.household_id) ||
      snap->late_touches("device_1m", q.start, std::min(wm1, q.end), q.household_id))
    return false;
  auto fresh = snap->db_now;
  lower_to(fresh, snap->fresh_cap("device_1h", q.start, q.end));
  lower_to(fresh, snap->fresh_cap("device_1m", q.start, std::min(wm1, q.end)));
  auto plan = std::make_shared<part_plan>();
  plan->rollup = "device_1h";
  plan->id = q.household_id;
  plan->format = "top-hourly-1";
  plan->label = "top.settled";
  plan->step = hour;
  plan->lo = q.start;
  plan->ext_hi = std::clamp(floor_to(wm1, minute), plan->lo, q.end);
  plan->live_lo = snap->device_lo;
  plan->db_hi = std::clamp(snap->device_lo, plan->lo, plan->ext_hi);
  if (plan->db_hi < q.end && plan->db_hi < snap->device_lo)
    return false;
  // Answerable from the snapshot (the caller checked the household is visible to it).
  auto memo = answer_key(*env, "top", *snap,
                         q.household_id + "|" + std::to_string(q.start) + "|" +
                             std::to_string(q.end) + "|" + std::to_string(q.limit));
  if (answer_from_memo(self, *env, memo, reply))
    return true;
  // The part's devices are part of its version: a device registered or moved changes it.
  char devices_hash[24];
  std::string joined;
  for (auto& d : devices)
    joined += d + ",";
  std::snprintf(devices_hash, sizeof devices_hash, "%016zx", std::hash<std::string>{}(joined));
  auto versions_of = [devices_hash = std::string(devices_hash)](const std::string& v1h,
                                                                const std::string& v1m) {
    return "h" + v1h + ";m" + v1m + ";d" + devices_hash;
  };
  // Everything below reads `slice`, never `snap` (ranges within [q.start, q.end)).
  auto slice = slice_of(*snap, {"device_1h", "device_1m"}, devices, q.start, q.end);
  plan->versions = [slice, versions_of](std::int64_t lo, std::int64_t hi) {
    return versions_of(slice->version_text("device_1h", lo, hi),
                       slice->version_text("device_1m", lo, hi));
  };
  plan->extend = [slice, devices](std::string payload, std::int64_t from, std::int64_t to) {
    auto h = decode_hourly(payload).value_or(hourly{});
    add_snapshot_energy(h, *slice, devices, from, to);
    return encode_hourly(h);
  };
  plan->cut = [](const std::string& payload, std::int64_t lo) {
    auto h = decode_hourly(payload).value_or(hourly{});
    h.erase(h.begin(), h.lower_bound(lo));
    return encode_hourly(h);
  };
  plan->read = [devices, versions_of, lo = plan->lo, hi = plan->db_hi](db::session& s) {
    auto r = db::settled_top(s, devices, lo, hi);
    hourly h;
    for (auto& x : r.rows)
      h[x.hour][x.device] = x.energy;
    return part{lo, hi, versions_of(r.versions_1h, r.versions_1m), encode_hourly(h)};
  };
  plan->well_formed = hourly_well_formed;
  auto finish = [self, env, memo, slice, q, devices, fresh, reply](const part& p,
                                                                   cache_outcome outcome) {
    auto h = decode_hourly(p.payload).value_or(hourly{});
    add_snapshot_energy(h, *slice, devices, std::max(p.hi, q.start), q.end);
    std::map<std::string, double> total;
    for (auto it = h.lower_bound(q.start); it != h.end() && it->first < q.end; ++it)
      for (auto& [d, e] : it->second) {
        auto [at, added] = total.emplace(d, e);
        if (!added)
          at->second += e;
      }
    db::top_result r;
    r.meta.found = true;
    r.meta.fresh_as_of = fresh;
    r.meta.live = true;
    for (auto& [d, e] : total)
      r.devices.push_back({d, e});
    // The database path's order: energy descending, then device id.
    std::sort(r.devices.begin(), r.devices.end(), [](const auto& a, const auto& b) {
      return a.energy_wh != b.energy_wh ? a.energy_wh > b.energy_wh : a.device_id < b.device_id;
    });
    if (r.devices.size() > static_cast<std::size_t>(q.limit))
      r.devices.resize(static_cast<std::size_t>(q.limit));
    auto body = render_top(q, r);
    keep_answer(self, *env, memo, body);
    reply(ok(std::move(body), outcome));
  };
  with_settled(self, env, std::move(plan), std::move(finish), reply);
  return true;
}

} // namespace joule::http
