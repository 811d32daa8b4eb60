#include "actors/app.hpp"

#include <algorithm>
#include <cstdlib>
#include <utility>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>

#include "core/log.hpp"
#include "core/registry.hpp"
#include "actors/supervisor.hpp"
#include "core/timefmt.hpp"
#include "cache/cache_broker.hpp"
#include "cache/live_answer_memo.hpp"
#include "cache/settled_keys.hpp"
#include "cache/settled_series.hpp"
#include "db/auth_actor.hpp"
#include "db/db_pool.hpp"
#include "db/change_listener.hpp"
#include "db/db_worker.hpp"
#include "db/live_tail.hpp"
#include "db/replica.hpp"
#include "db/migrations.hpp"
#include "db/partition_actor.hpp"
#include "db/partitions.hpp"
#include "db/refresh_actor.hpp"
#include "db/session.hpp"
#include "db/telemetry_writer.hpp"
#include "db/watermarks.hpp"
#include "http/admin_routes.hpp"
#include "http/analytics_routes.hpp"
#include "http/auth.hpp"
#include "http/ingest_routes.hpp"
#include "http/routes.hpp"
#include "http/system_routes.hpp"
#include "http/ui_routes.hpp"
#include "http/server.hpp"
#include "rules/alert_routes.hpp"
#include "rules/alerts_module.hpp"

namespace joule {
namespace {

std::int64_t us(std::chrono::milliseconds d) { return d.count() * 1000; }


caf::actor_system_config& tuned(caf::actor_system_config& cfg, int threads) {
  cfg.set("scheduler.max-threads", threads);
  // Work stealing spins while idle; on a 2-core box that spinning is CPU PostgreSQL needs.
  // The sharing policy parks idle workers on a condition variable instead.
  if (const char* p = std::getenv("JOULE_CAF_POLICY"))
    cfg.set("scheduler.policy", caf::atom_from_string(p));
  else
    cfg.set("scheduler.policy", caf::atom("sharing"));
  cfg.set("logger.verbosity", caf::atom("quiet"));
  return cfg;
}

} // namespace

struct app::impl {
  config::settings settings;
  caf::actor_system_config caf_cfg;
  std::unique_ptr<caf::actor_system> system;
  std::shared_ptr<service_registry> registry = std::make_shared<service_registry>();
  std::shared_ptr<db::watermark_board> watermarks = std::make_shared<db::watermark_board>();
  /// The read standby's replay state (db.read_url): written by its monitor, read by the pool.
  std::shared_ptr<db::replica_state> replica;
  /// Verified tokens: filled by the auth actor, read by every request (outlives restarts).
  std::shared_ptr<auth::token_cache> tokens;
  /// The near cache: filled by the cache broker, read by the analytics routes without a
  /// message (outlives broker restarts).
  std::shared_ptr<cache::near_cache> near;
  /// The live tail's snapshot (written by its actor, read by the analytics routes) and the
  /// settled answer parts joined with it; null when live.enabled is false.
  std::shared_ptr<db::live_tail_holder> live;
  std::shared_ptr<cache::near_cache> settled;
  std::shared_ptr<cache::settled_series> series;
  supervisor_actor root;
  /// The settings in effect; restarted and replaced actors spawn from them (SIGHUP reload).
  std::shared_ptr<config::settings_box> current;
  std::shared_ptr<http::auth_guard> guard;
  std::unique_ptr<http::server> server;
  std::uint16_t port = 0;
  bool started = false;

  std::vector<child_spec> children();
};

std::vector<child_spec> app::impl::children() {
  const auto s = settings;
  std::vector<child_spec> out;
  out.push_back(supervise<db_pool_actor>("db_pool", [box = current, board = watermarks, replica = replica](caf::actor_system& sys) {
    return db::spawn_db_pool(sys, box->get(), board, replica);
  }));
  // "db" in /admin/status: where analytics reads go and the standby's lag.
  out.push_back(supervise<db::replica_monitor_actor>("db", [s, replica = replica](caf::actor_system& sys) {
    return db::spawn_replica_monitor(sys, s, replica);
  }));
  out.push_back(supervise<auth_actor>("auth", [s, cache = tokens](caf::actor_system& sys) {
    return db::spawn_auth_actor(sys, s, cache);
  }));
  out.push_back(supervise<cache_actor>("cache", [box = current, near = near](caf::actor_system& sys) {
    return cache::spawn_cache_broker(sys, box->get(), near);
  }));
  // One refresh actor per rollup definition (config/rollups.cpp).
  for (auto& r : db::rollups()) {
    auto name = r.name;
    out.push_back(supervise<refresh_actor>(
        "refresh." + name, [s, name, board = watermarks](caf::actor_system& sys) {
          return db::spawn_refresh(sys, s, name, board);
        }));
  }
  if (live) {
    out.push_back(supervise<db::live_tail_actor>(
        "live_tail", [s, holder = live](caf::actor_system& sys) {
          return db::spawn_live_tail(sys, s, holder);
        }));
    // Announced changes evict the settled parts they overlap, here and on every other
    // instance sharing the database (entries are keyed by version anyway: this frees memory
    // at once rather than at expiry).
    auto on_change = [store = settled, series = series](const db::rollup_change& c) {
      // A pending late write changes no rollup row: the readers' late_touches (per household)
      // and the versions keep answers exact; evicting here would only make every subject
      // overlapping the range read its part again.
      if (c.kind == "pending")
        return;
      cache::evict_settled(*store, c.rollup, c.lo, c.hi);
      series->evict(c.rollup + ":", c.lo, c.hi);
    };
    auto on_reset = [store = settled, series = series] {
      store->clear();
      series->clear();
    };
    out.push_back(supervise<db::change_listener_actor>(
        "change_listener", [s, on_change, on_reset](caf::actor_system& sys) {
          return db::spawn_change_listener(sys, s, on_change, on_reset);
        }));
  }
  out.push_back(supervise<partition_actor>(
      "partitions", [s](caf::actor_system& sys) { return db::spawn_partition_keeper(sys, s); }));
  out.push_back(supervise<telemetry_writer_actor>(
      "ingest", [s](caf::actor_system& sys) { return db::spawn_telemetry_writer(sys, s); }));
  if (s.alerts_enabled)
    for (auto& c : rules::alert_children(s, registry, live))
      out.push_back(std::move(c));
  return out;
}

app::app(config::settings s) : impl_(std::make_unique<impl>()) { impl_->settings = std::move(s); }

app::~app() { stop(); }

void app::start() {
  auto& d = *impl_;
  // Settings that only make sense together (auth.required=false off loopback) are refused
  // here too: tests and embedders construct settings without config::load.
  if (auto err = config::validate(d.settings); !err.empty())
    throw std::runtime_error(err);
  d.current = std::make_shared<config::settings_box>(d.settings);
  d.tokens = std::make_shared<auth::token_cache>(
      static_cast<std::size_t>(d.settings.auth_cache_max_entries));
  d.near = cache::make_near_cache(d.settings);
  d.replica = std::make_shared<db::replica_state>(d.settings.db_read_max_lag);
  if (d.settings.live_enabled) {
    d.live = std::make_shared<db::live_tail_holder>();
    d.settled = std::make_shared<cache::near_cache>(
        std::chrono::milliseconds{1},  // enables it; every put names its own ttl
        static_cast<std::size_t>(d.settings.live_settled_max_entries), false,
        static_cast<std::size_t>(d.settings.live_settled_max_bytes / 2));
    d.series = std::make_shared<cache::settled_series>(
        static_cast<std::size_t>(d.settings.live_settled_max_entries),
        static_cast<std::size_t>(d.settings.live_settled_max_bytes / 2));
  }
  if (!d.settings.auth_required)
    log(log_level::warn, "auth",
        "auth.required = false: requests without a token act as admin (loopback only)");
  {
    // Schema first, synchronously: nothing may serve or write before it is in place.
    db::session s{d.settings.db_url, std::chrono::milliseconds{0}};
    auto applied = db::migrate(s);
    for (auto v : applied)
      log(log_level::info, "migrate", "applied migration " + std::to_string(v));
    auto rep = db::ensure_partitions(s, us(d.settings.partition_interval),
                                     d.settings.partitions_ahead, d.settings.partitions_behind);
    if (rep.created)
      log(log_level::info, "partitions", "created " + std::to_string(rep.created));
  }
  d.system = std::make_unique<caf::actor_system>(tuned(d.caf_cfg, d.settings.scheduler_threads));
  d.root = d.system->spawn(supervisor, d.children(), d.registry, d.settings.supervisor_backoff_max);
  d.registry->put<supervisor_actor>("supervisor", d.root);
  {
    // The supervisor spawns its children when it first runs: wait for that, so that the
    // first request finds every actor in the registry.
    caf::scoped_actor self{*d.system};
    self->request(d.root, std::chrono::seconds(10), status_atom::value)
        .receive([](std::string&) {},
                 [](caf::error&) { throw std::runtime_error("supervisor did not start"); });
  }

  // Each feature registers its own routes.
  auto env = std::make_shared<http::route_env>();
  env->registry = d.registry;
  env->settings = d.settings;
  env->current = d.current;
  env->near = d.near;
  env->live = d.live;
  env->settled = d.settled;
  env->series = d.series;
  if (d.live && d.settings.live_answer_memo_max_bytes > 0)
    // Two live intervals: a snapshot's answers stay while it is the newest (their keys name
    // it, so a later snapshot never finds them), then expire instead of waiting for eviction.
    env->answers = std::make_shared<cache::live_answer_memo>(
        std::chrono::duration_cast<std::chrono::milliseconds>(d.settings.live_interval * 2),
        static_cast<std::size_t>(d.settings.live_answer_memo_max_bytes));
  auto table = std::make_shared<http::route_table>();
  http::add_system_routes(*table, env);
  http::add_analytics_routes(*table, env);
  http::add_ingest_routes(*table, env);
  http::add_admin_routes(*table, env);
  http::add_ui_routes(*table);
  if (d.settings.alerts_enabled)
    rules::add_alert_routes(*table, env);
  http::auth_settings as;
  as.required = d.settings.auth_required;
  as.rate_limit = d.settings.auth_rate_limit;
  as.rate_burst = d.settings.auth_rate_burst;
  as.failure_rate_limit = d.settings.auth_failure_rate_limit;
  as.failure_burst = d.settings.auth_failure_burst;
  d.guard = std::make_shared<http::auth_guard>(as, d.tokens, d.registry);
  table->set_guard(d.guard);
  http::server_config hc;
  config::split_host_port(d.settings.http_listen, hc.host, hc.port);
  hc.threads = d.settings.http_threads;
  hc.body_limit = static_cast<std::uint64_t>(d.settings.http_body_limit);
  hc.request_timeout = d.settings.http_request_timeout;
  hc.idle_timeout = d.settings.http_idle_timeout;
  hc.header_limit = static_cast<std::uint32_t>(d.settings.http_header_limit);
  hc.header_timeout = d.settings.http_header_timeout;
  hc.pipeline_limit = static_cast<std::size_t>(d.settings.http_pipeline_limit);
  hc.max_connections = d.settings.http_max_connections;
  {
    std::string err;  // validated when the settings were loaded
    if (auto trusted = config::ip_ranges::parse(d.settings.http_trusted_proxies, err))
      hc.trusted_proxies = std::move(*trusted);
  }
  hc.expect_check = [table](const http::request& head) { return http::check_head(*table, head); };
  d.server = std::make_unique<http::server>(*d.system, hc, http::serve(table));
  try {
    d.port = d.server->start();
  } catch (const std::exception& e) {
    stop();
    throw std::runtime_error("cannot listen on " + d.settings.http_listen + ": " + e.what());
  }
  d.started = true;
  log(log_level::info, "http", "listening on " + hc.host + ":" + std::to_string(d.port));
}

void app::stop() {
  auto& d = *impl_;
  if (d.server) {
    d.server->stop();
    d.server.reset();
  }
  if (d.system) {
    d.registry->clear();
    caf::anon_send_exit(d.root, caf::exit_reason::user_shutdown);
    d.root = nullptr;
    d.system.reset();  // waits for every actor to finish
  }
  d.started = false;
}

void apply_log_settings(const config::settings& s) {
  if (auto l = parse_log_level(s.log_level))
    set_log_level(*l);
  if (auto f = parse_log_format(s.log_format))
    set_log_format(*f);
  set_access_log(s.log_access);
}

config::settings app::current_settings() const {
  return impl_->current ? impl_->current->get() : impl_->settings;
}

std::string app::reload(const config::settings& next) {
  auto& d = *impl_;
  if (!d.started)
    return "the server is not running";
  auto cur = d.current->get();
  auto merged = cur;
  const auto& live = config::live_keys();
  std::vector<std::string> applied, ignored;
  bool pool = false, cache = false;
  for (auto& o : config::options()) {
    auto value = o.get(next);
    if (o.get(cur) == value)
      continue;
    if (std::find(live.begin(), live.end(), o.key) == live.end()) {
      ignored.push_back(o.key);
      continue;
    }
    if (auto err = o.set(merged, value); !err.empty())
      return o.key + ": " + err;
    applied.push_back(o.key);
    pool = pool || o.key.rfind("db.", 0) == 0;
    cache = cache || o.key.rfind("cache.", 0) == 0 || o.key.rfind("redis.", 0) == 0;
  }
  if (auto err = config::validate(merged); !err.empty())
    return err;
  d.current->set(merged);
  apply_log_settings(merged);
  d.guard->set_limits(merged.auth_rate_limit, merged.auth_rate_burst,
                      merged.auth_failure_rate_limit, merged.auth_failure_burst);
  // The old pool and broker finish the jobs and lookups they hold: the longest a caller waits
  // on either is db.request_deadline (+ 1 s for a broker waiter).
  auto grace = static_cast<std::uint64_t>(
      std::max(cur.db_request_deadline, merged.db_request_deadline).count() + 2000);
  caf::scoped_actor self{*d.system};
  for (auto [needed, name] : {std::pair{pool, "db_pool"}, std::pair{cache, "cache"}})
    if (needed)
      self->request(d.root, std::chrono::seconds(5), restart_atom::value, std::string(name),
                    grace)
          .receive([](bool) {},
                   [&](caf::error& e) {
                     log(log_level::error, "config", std::string("could not replace ") + name +
                                                         ": " + d.system->render(e));
                   });
  auto join = [](const std::vector<std::string>& v) {
    std::string out;
    for (auto& k : v)
      out += (out.empty() ? "" : ", ") + k;
    return out.empty() ? std::string("none") : out;
  };
  log(log_level::info, "config", "reloaded: applied " + join(applied));
  if (!ignored.empty())
    log(log_level::warn, "config",
        "changed but only applied at the next start: " + join(ignored));
  return {};
}

std::uint16_t app::port() const { return impl_->port; }
caf::actor_system& app::system() { return *impl_->system; }
std::shared_ptr<service_registry> app::registry() const { return impl_->registry; }
const config::settings& app::settings() const { return impl_->settings; }

} // namespace joule
