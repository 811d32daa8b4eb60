#include "actors/app.hpp"

#include <cstdlib>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>

#include "core/log.hpp"
#include "core/registry.hpp"
#include "actors/supervisor.hpp"
#include "core/timefmt.hpp"
#include "cache/cache_broker.hpp"
#include "cache/redis_client.hpp"
#include "cache/redis_worker.hpp"
#include "db/auth_actor.hpp"
#include "db/db_pool.hpp"
#include "db/db_worker.hpp"
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
#include "http/server.hpp"
#include "rules/alert_routes.hpp"
#include "rules/alerts_module.hpp"

namespace joule {
namespace {

std::int64_t us(std::chrono::milliseconds d) { return d.count() * 1000; }

db::db_worker_config worker_cfg(const config::settings& s, const std::string& label,
                                std::chrono::milliseconds statement_timeout) {
  db::db_worker_config c;
  c.url = s.db_url;
  c.statement_timeout = statement_timeout;
  c.backoff_max = s.db_reconnect_backoff_max;
  c.label = label;
  return c;
}

config::refresh_policy policy_of(const config::settings& s, const std::string& rollup) {
  if (rollup == "device_1m")
    return s.refresh_device_1m;
  if (rollup == "household_5m")
    return s.refresh_household_5m;
  return s.refresh_device_1h;
}

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
  /// Verified tokens: filled by the auth actor, read by every request (outlives restarts).
  std::shared_ptr<auth::token_cache> tokens;
  supervisor_actor root;
  std::unique_ptr<http::server> server;
  std::uint16_t port = 0;
  bool started = false;

  std::vector<child_spec> children();
};

std::vector<child_spec> app::impl::children() {
  const auto s = settings;
  std::vector<child_spec> out;
  out.push_back(supervise<db_pool_actor>("db_pool", [s, board = watermarks](caf::actor_system& sys) {
    db::db_pool_config pc;
    pc.size = s.db_pool_size;
    pc.queue_limit = static_cast<std::size_t>(s.db_queue_limit);
    pc.query_deadline = s.db_request_deadline;
    pc.mode = s.api_read_raw ? db::read_mode::raw : db::read_mode::rollups;
    pc.watermarks = board;
    return db::spawn_db_pool(sys, pc, worker_cfg(s, "pool", s.db_statement_timeout));
  }));
  out.push_back(supervise<auth_actor>("auth", [s, cache = tokens](caf::actor_system& sys) {
    db::auth_config ac;
    ac.cache = cache;
    ac.refresh_interval = s.auth_refresh_interval;
    ac.lookup_timeout = std::min(s.db_request_deadline, std::chrono::milliseconds(2000));
    return db::spawn_auth_actor(sys, ac, worker_cfg(s, "auth", s.db_statement_timeout));
  }));
  out.push_back(supervise<cache_actor>("cache", [s](caf::actor_system& sys) {
    cache::cache_config cc;
    cc.enabled = !s.redis_url.empty();
    cc.workers = s.redis_workers;
    cc.redis_timeout = s.redis_timeout;
    cc.ttl = s.cache_ttl;
    cc.live_ttl = s.cache_live_ttl;
    cc.jitter_min_pct = s.cache_jitter_min_pct;
    cc.jitter_max_pct = s.cache_jitter_max_pct;
    cc.breaker_failures = s.cache_breaker_failures;
    cc.breaker_open = s.cache_breaker_open;
    cc.max_inflight = s.cache_max_inflight;
    cc.local_ttl = s.cache_local_ttl;
    cc.local_max_entries = static_cast<std::size_t>(s.cache_local_max_entries);
    cc.flight_timeout = s.db_request_deadline + std::chrono::seconds(1);
    std::string host;
    std::uint16_t port = 0;
    if (cc.enabled)
      cache::parse_redis_url(s.redis_url, host, port);
    return cache::spawn_cache_broker(sys, cc, host, port);
  }));
  for (auto& r : db::rollups()) {
    auto name = r.name;
    out.push_back(supervise<refresh_actor>(
        "refresh." + name, [s, name, board = watermarks](caf::actor_system& sys) {
          auto p = policy_of(s, name);
          db::refresh_config rc;
          rc.rollup = name;
          rc.policy = {us(p.start_offset), us(p.end_offset), us(s.refresh_max_batch)};
          rc.schedule_interval = p.schedule_interval;
          rc.board = board;
          auto worker = sys.spawn<caf::detached>(
              db::db_worker, worker_cfg(s, "refresh." + name, std::chrono::milliseconds{0}));
          return sys.spawn(db::refresh, rc, worker);
        }));
  }
  out.push_back(supervise<partition_actor>("partitions", [s](caf::actor_system& sys) {
    db::partition_config pc;
    pc.interval_us = us(s.partition_interval);
    pc.ahead = s.partitions_ahead;
    pc.behind = s.partitions_behind;
    pc.check_interval = s.partition_check_interval;
    auto worker = sys.spawn<caf::detached>(
        db::db_worker, worker_cfg(s, "partitions", std::chrono::milliseconds{0}));
    return sys.spawn(db::partition_keeper, pc, worker);
  }));
  out.push_back(supervise<telemetry_writer_actor>("ingest", [s](caf::actor_system& sys) {
    db::writer_config wc;
    wc.max_pending_rows = static_cast<std::size_t>(s.ingest_max_pending_rows);
    wc.max_rows_per_commit = static_cast<std::size_t>(s.ingest_max_rows_per_commit);
    auto cfg = worker_cfg(s, "ingest", std::chrono::milliseconds{30000});
    auto spawn_worker = [&sys, cfg](int) { return sys.spawn<caf::detached>(db::db_worker, cfg); };
    return sys.spawn(db::telemetry_writer, wc, spawn_worker, s.ingest_writers);
  }));
  if (s.alerts_enabled)
    for (auto& c : rules::alert_children(s, registry))
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
  d.tokens = std::make_shared<auth::token_cache>(
      static_cast<std::size_t>(d.settings.auth_cache_max_entries));
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
  auto table = std::make_shared<http::route_table>();
  http::add_system_routes(*table, env);
  http::add_analytics_routes(*table, env);
  http::add_ingest_routes(*table, env);
  http::add_admin_routes(*table, env);
  if (d.settings.alerts_enabled)
    rules::add_alert_routes(*table, env);
  http::auth_settings as;
  as.required = d.settings.auth_required;
  as.rate_limit = d.settings.auth_rate_limit;
  as.rate_burst = d.settings.auth_rate_burst;
  as.failure_rate_limit = d.settings.auth_failure_rate_limit;
  as.failure_burst = d.settings.auth_failure_burst;
  table->set_guard(std::make_shared<http::auth_guard>(as, d.tokens, d.registry));
  http::server_config hc;
  config::split_host_port(d.settings.http_listen, hc.host, hc.port);
  hc.threads = d.settings.http_threads;
  hc.body_limit = static_cast<std::uint64_t>(d.settings.http_body_limit);
  hc.request_timeout = d.settings.http_request_timeout;
  hc.idle_timeout = d.settings.http_idle_timeout;
  d.server = std::make_unique<http::server>(hc, http::serve(*d.system, table));
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

std::uint16_t app::port() const { return impl_->port; }
caf::actor_system& app::system() { return *impl_->system; }
std::shared_ptr<service_registry> app::registry() const { return impl_->registry; }
const config::settings& app::settings() const { return impl_->settings; }

} // namespace joule
