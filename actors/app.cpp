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
  /// Verified tokens: filled by the auth actor, read by every request (outlives restarts).
  std::shared_ptr<auth::token_cache> tokens;
  /// The near cache: filled by the cache broker, read by the analytics routes without a
  /// message (outlives broker restarts).
  std::shared_ptr<cache::near_cache> near;
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
    return db::spawn_db_pool(sys, s, board);
  }));
  out.push_back(supervise<auth_actor>("auth", [s, cache = tokens](caf::actor_system& sys) {
    return db::spawn_auth_actor(sys, s, cache);
  }));
  out.push_back(supervise<cache_actor>("cache", [s, near = near](caf::actor_system& sys) {
    return cache::spawn_cache_broker(sys, s, near);
  }));
  // One refresh actor per rollup definition (config/rollups.cpp).
  for (auto& r : db::rollups()) {
    auto name = r.name;
    out.push_back(supervise<refresh_actor>(
        "refresh." + name, [s, name, board = watermarks](caf::actor_system& sys) {
          return db::spawn_refresh(sys, s, name, board);
        }));
  }
  out.push_back(supervise<partition_actor>(
      "partitions", [s](caf::actor_system& sys) { return db::spawn_partition_keeper(sys, s); }));
  out.push_back(supervise<telemetry_writer_actor>(
      "ingest", [s](caf::actor_system& sys) { return db::spawn_telemetry_writer(sys, s); }));
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
  d.near = cache::make_near_cache(d.settings);
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
  env->near = d.near;
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
  table->set_guard(std::make_shared<http::auth_guard>(as, d.tokens, d.registry));
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

std::uint16_t app::port() const { return impl_->port; }
caf::actor_system& app::system() { return *impl_->system; }
std::shared_ptr<service_registry> app::registry() const { return impl_->registry; }
const config::settings& app::settings() const { return impl_->settings; }

} // namespace joule
