// joule: serve | migrate | refresh ROLLUP [--start T --end T] | token create|list|revoke |
//        print-config
#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <thread>

#include "actors/app.hpp"
#include "actors/status_cli.hpp"
#include "core/log.hpp"
#include "core/progress.hpp"
#include "core/timefmt.hpp"
#include "config/rollups.hpp"
#include "config/settings.hpp"
#include "db/migrations.hpp"
#include "db/rollups.hpp"
#include "db/session.hpp"
#include "db/tokens.hpp"
#include "http/router.hpp"

#include <pqxx/pqxx>

#ifndef JOULE_DEFAULT_CONFIG
#define JOULE_DEFAULT_CONFIG "config/joule.conf"
#endif

namespace {

volatile std::sig_atomic_t stop_requested = 0;
volatile std::sig_atomic_t reload_requested = 0;
void on_signal(int) { stop_requested = 1; }
void on_hup(int) { reload_requested = 1; }

// The rollup names come from the definitions (config/rollups.cpp).
std::string usage() {
  return "usage: joule COMMAND [--setting=value ...]\n"
         "  serve                          run the server (migrates first)\n"
         "  migrate                        apply database migrations and exit\n"
         "  refresh ROLLUP [--start T] [--end T]\n"
         "                                 re-materialise ROLLUP (" +
         joule::config::rollup_names() +
         ")\n"
         "                                 over [T, T) (RFC 3339; default: all data)\n"
         "  token create --scope SCOPES [--household UUID]... [--expires-in DURATION] [--name TEXT]\n"
         "                                 create an API token (SCOPES: comma list of read, ingest,\n"
         "                                 alerts, admin); the token is the last line of stdout\n"
         "  token list                     every token (never the secret)\n"
         "  token revoke ID                revoke a token (running servers stop accepting it\n"
         "                                 within auth.refresh_interval + a query)\n"
         "  print-config                   print every setting with its current value\n"
         "  status [--url URL] [--token T] summary of a running server (GET /admin/status and\n"
         "                                 /metrics; URL default env JOULE_URL, else from\n"
         "                                 http.listen; an admin token: T or env JOULE_TOKEN)\n"
         "  --config FILE                  settings file (default " JOULE_DEFAULT_CONFIG
         ", env JOULE_CONFIG)\n";
}

std::int64_t us(std::chrono::milliseconds d) { return d.count() * 1000; }

int cmd_refresh(const joule::config::settings& s, const std::vector<std::string>& pos,
                const std::string& start_text, const std::string& end_text) {
  if (pos.size() < 2) {
    std::cerr << "refresh: name a rollup (" << joule::config::rollup_names() << ")\n";
    return 2;
  }
  auto* spec = joule::db::find_rollup(pos[1]);
  if (!spec) {
    std::cerr << "refresh: unknown rollup '" << pos[1] << "' ("
              << joule::config::rollup_names() << ")\n";
    return 2;
  }
  std::int64_t start = INT64_MIN / 2, end = INT64_MAX / 2;
  if (!start_text.empty()) {
    auto t = joule::parse_rfc3339(start_text);
    if (!t) {
      std::cerr << "refresh: --start '" << start_text << "' is not RFC 3339\n";
      return 2;
    }
    start = *t;
  }
  if (!end_text.empty()) {
    auto t = joule::parse_rfc3339(end_text);
    if (!t) {
      std::cerr << "refresh: --end '" << end_text << "' is not RFC 3339\n";
      return 2;
    }
    end = *t;
  }
  if (start >= end) {
    std::cerr << "refresh: --start must be before --end\n";
    return 2;
  }
  joule::db::session sess{s.db_url};
  joule::db::migrate(sess);
  auto p = s.refresh_policies.at(spec->name);
  joule::db::refresh_policy_us pol{us(p.start_offset), us(p.end_offset), 0};
  if (start_text.empty()) {
    // "All data": from the first reading (the range is clamped to real data anyway).
    pqxx::nontransaction q{sess.conn()};
    auto r = q.exec("SELECT (extract(epoch from min(ts)) * 1000000)::bigint FROM telemetry");
    // No readings: nothing to materialise (not decades of empty pieces from 1970).
    start = r[0][0].is_null() ? joule::now_micros() : r[0][0].as<std::int64_t>();
  }
  if (end_text.empty())
    end = joule::now_micros() + 86400LL * 1000000;
  // One transaction per refresh.max_batch of the range, like the policy: a month's refresh
  // neither holds one huge transaction open nor loses all of its work to one failure.
  const std::int64_t piece = std::max<std::int64_t>(us(s.refresh_max_batch), spec->width);
  std::int64_t rows = 0, ranges = 0;
  double ms = 0;
  joule::db::refresh_report rep;
  // Paced like a catching-up policy (refresh.catchup_duty): a manual refresh of a long
  // history leaves the servers' reads their share. Rows written, rate and ETA (by the share of
  // the range done) on stderr: redrawn on a terminal, a plain line every 10 s otherwise; stdout
  // keeps only the JSON summary.
  std::int64_t source_rows = 0;
  joule::progress_meter meter{"refresh " + spec->name};
  auto done_share = [&](std::int64_t at) {
    return static_cast<double>(at - start) / static_cast<double>(end - start);
  };
  for (std::int64_t lo = start; lo < end;) {
    std::int64_t hi = end - lo > piece ? joule::floor_to(lo + piece, spec->width) : end;
    if (hi <= lo)
      hi = std::min(end, joule::floor_to(lo, spec->width) + spec->width);
    auto t0 = std::chrono::steady_clock::now();
    rep = joule::db::refresh_range(sess, *spec, pol, lo, hi);
    auto busy = std::chrono::steady_clock::now() - t0;
    rows += rep.rows_written;
    source_rows += rep.source_rows;
    ranges += rep.ranges;
    ms += rep.duration_ms;
    lo = hi;
    meter.update(done_share(lo), static_cast<std::uint64_t>(rows));
    if (lo < end && s.refresh_catchup_duty < 100)
      std::this_thread::sleep_for(busy * (100 - s.refresh_catchup_duty) / s.refresh_catchup_duty);
  }
  meter.finish(1, static_cast<std::uint64_t>(rows));
  std::cout << "{\"rollup\":\"" << spec->name << "\",\"rows_written\":" << rows
            << ",\"ranges\":" << ranges << ",\"watermark\":\""
            << joule::format_rfc3339(rep.watermark_after) << "\",\"duration_ms\":" << ms
            << "}\n";
  return 0;
}

// The flags of `joule token create` (not settings).
struct token_flags {
  std::optional<std::string> scope, expires_in, name;
  std::vector<std::string> households;
  bool any() const { return scope || expires_in || name || !households.empty(); }
};

std::string time_or(const std::optional<std::int64_t>& t, const char* none) {
  return t ? joule::format_rfc3339(*t) : std::string(none);
}

// A token name in one tab-separated field: control characters become spaces.
std::string field(std::string s) {
  for (auto& c : s)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
      c = ' ';
  return s;
}

std::string joined(const std::vector<std::string>& v, const char* none) {
  if (v.empty())
    return none;
  std::string out;
  for (auto& x : v)
    out += (out.empty() ? "" : ",") + x;
  return out;
}

int cmd_token(const joule::config::settings& s, const std::vector<std::string>& pos,
              const token_flags& f) {
  namespace auth = joule::auth;
  auto sub = pos.size() >= 2 ? pos[1] : std::string{};
  if (sub != "create" && f.any()) {
    std::cerr << "token: --scope, --household, --expires-in and --name belong to "
                 "`joule token create`\n";
    return 2;
  }
  if (sub == "create") {
    if (pos.size() > 2) {
      std::cerr << "token create: unexpected argument '" << pos[2] << "'\n";
      return 2;
    }
    if (!f.scope) {
      std::cerr << "token create: --scope is required (comma list of read, ingest, alerts, "
                   "admin)\n";
      return 2;
    }
    joule::db::token_spec spec;
    std::string bad;
    auto scopes = auth::parse_scopes(*f.scope, bad);
    if (!scopes) {
      std::cerr << "token create: unknown scope '" << bad
                << "' (expected a comma list of read, ingest, alerts, admin)\n";
      return 2;
    }
    spec.scopes = *scopes;
    for (auto& h : f.households) {
      auto id = joule::http::normalize_uuid(h);
      if (!id) {
        std::cerr << "token create: --household '" << h << "' is not a UUID\n";
        return 2;
      }
      spec.households.push_back(*id);
    }
    if (f.expires_in) {
      auto d = joule::config::parse_duration(*f.expires_in);
      if (!d || d->count() < 1000 || *d > std::chrono::hours(24 * 3650)) {
        std::cerr << "token create: --expires-in '" << *f.expires_in
                  << "' is not a duration from 1s to 3650d (e.g. 3600s, 12h, 30d)\n";
        return 2;
      }
      spec.expires_in_us = d->count() * 1000;
    }
    if (f.name) {
      if (f.name->size() > 200) {
        std::cerr << "token create: --name is longer than 200 characters\n";
        return 2;
      }
      spec.name = *f.name;
    }
    joule::db::session sess{s.db_url};
    joule::db::migrate(sess);
    auto t = joule::db::create_token(sess, spec);
    std::cout << "id: " << t.record.id << "\n"
              << "scopes: " << joined(auth::scope_names(t.record.scopes), "") << "\n"
              << "households: " << joined(t.record.households, "all") << "\n"
              << "expires: " << time_or(t.record.expires_at, "never") << "\n";
    std::cerr << "The token below is shown only once; only its SHA-256 is stored.\n";
    std::cout << t.secret << std::endl;
    return 0;
  }
  if (sub == "list") {
    if (pos.size() > 2) {
      std::cerr << "token list: unexpected argument '" << pos[2] << "'\n";
      return 2;
    }
    joule::db::session sess{s.db_url};
    joule::db::migrate(sess);
    auto now = joule::now_micros();
    std::cout << "id\tname\tscopes\thouseholds\tstatus\tcreated_at\texpires_at\tlast_used_at\n";
    for (auto& t : joule::db::list_tokens(sess)) {
      const char* status = t.revoked_at                           ? "revoked"
                           : t.expires_at && *t.expires_at <= now ? "expired"
                                                                  : "active";
      std::cout << t.id << "\t" << field(t.name) << "\t" << joined(auth::scope_names(t.scopes), "")
                << "\t" << joined(t.households, "all") << "\t" << status << "\t"
                << joule::format_rfc3339(t.created_at) << "\t" << time_or(t.expires_at, "never")
                << "\t" << time_or(t.last_used_at, "never") << "\n";
    }
    return 0;
  }
  if (sub == "revoke") {
    if (pos.size() != 3) {
      std::cerr << "token revoke: name one token id\n";
      return 2;
    }
    auto id = joule::http::normalize_uuid(pos[2]);
    if (!id) {
      std::cerr << "token revoke: '" << pos[2] << "' is not a token id (UUID)\n";
      return 2;
    }
    joule::db::session sess{s.db_url};
    joule::db::migrate(sess);
    switch (joule::db::revoke_token(sess, *id)) {
      case joule::db::revoke_outcome::unknown:
        std::cerr << "token revoke: no token " << *id << "\n";
        return 1;
      case joule::db::revoke_outcome::already_revoked:
        std::cout << "token " << *id << " was already revoked\n";
        return 0;
      case joule::db::revoke_outcome::revoked:
        std::cout << "revoked token " << *id << "\n";
        return 0;
    }
  }
  std::cerr << "token: expected create, list or revoke\n" << usage();
  return 2;
}

} // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  // refresh's own flags are not settings: take them out first.
  std::string start_text, end_text, status_url, status_token;
  token_flags tflags;
  for (size_t i = 0; i < args.size();) {
    auto take = [&](const std::string& flag, std::string& out) {
      if (args[i] == flag && i + 1 < args.size()) {
        out = args[i + 1];
        args.erase(args.begin() + static_cast<long>(i), args.begin() + static_cast<long>(i) + 2);
        return true;
      }
      if (args[i].rfind(flag + "=", 0) == 0) {
        out = args[i].substr(flag.size() + 1);
        args.erase(args.begin() + static_cast<long>(i));
        return true;
      }
      return false;
    };
    std::string value;
    if (take("--start", start_text) || take("--end", end_text) || take("--url", status_url) ||
        take("--token", status_token))
      continue;
    // `joule token create`'s own flags (--household may repeat).
    if (take("--scope", value)) {
      tflags.scope = value;
    } else if (take("--household", value)) {
      tflags.households.push_back(value);
    } else if (take("--expires-in", value)) {
      tflags.expires_in = value;
    } else if (take("--name", value)) {
      tflags.name = value;
    } else {
      ++i;
    }
  }
  auto loaded = joule::config::load(args, [](const char* n) { return std::getenv(n); },
                                    JOULE_DEFAULT_CONFIG);
  if (loaded.help) {
    std::cout << usage() << "\n" << joule::config::help_text();
    return 0;
  }
  if (!loaded.error.empty()) {
    std::cerr << "joule: " << loaded.error << "\n";
    return 2;
  }
  // log.level is also JOULE_LOG_LEVEL (the environment overrides the file, as for every key).
  joule::apply_log_settings(loaded.values);
  const auto& s = loaded.values;
  auto cmd = loaded.positional.empty() ? std::string("serve") : loaded.positional[0];
  if (cmd != "token" && tflags.any()) {
    std::cerr << "joule: --scope, --household, --expires-in and --name belong to "
                 "`joule token create`\n";
    return 2;
  }
  try {
    if (cmd == "print-config") {
      for (auto& o : joule::config::options())
        std::cout << "# " << o.description << "\n" << o.key << " = " << o.get(s) << "\n\n";
      return 0;
    }
    if (cmd == "migrate") {
      joule::db::session sess{s.db_url};
      auto applied = joule::db::migrate(sess);
      std::cout << "applied " << applied.size() << " migration(s)\n";
      return 0;
    }
    if (cmd == "refresh")
      return cmd_refresh(s, loaded.positional, start_text, end_text);
    if (cmd == "token")
      return cmd_token(s, loaded.positional, tflags);
    if (cmd == "status") {
      joule::status_options so;
      so.url = status_url;
      if (so.url.empty())
        if (const char* u = std::getenv("JOULE_URL"))
          so.url = u;
      if (so.url.empty()) {
        std::string host;
        std::uint16_t port = 0;
        joule::config::split_host_port(s.http_listen, host, port);
        if (port == 0) {
          std::cerr << "status: http.listen has port 0: name the server with --url\n";
          return 2;
        }
        if (host == "0.0.0.0" || host == "::" || host.empty())
          host = "127.0.0.1";
        if (host.find(':') != std::string::npos)
          host = "[" + host + "]";
        so.url = "http://" + host + ":" + std::to_string(port);
      }
      so.token = status_token;
      if (so.token.empty())
        if (const char* t = std::getenv("JOULE_TOKEN"))
          so.token = t;
      return joule::run_status(so);
    }
    if (cmd != "serve") {
      std::cerr << "joule: unknown command '" << cmd << "'\n" << usage();
      return 2;
    }
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
    std::signal(SIGPIPE, SIG_IGN);
    std::signal(SIGHUP, on_hup);  // reload the config file (applied once the server runs)
    joule::app server{s};
    server.start();
    std::cout << "joule listening on " << s.http_listen.substr(0, s.http_listen.rfind(':')) << ":"
              << server.port() << std::endl;
    while (!stop_requested) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      if (!reload_requested)
        continue;
      reload_requested = 0;
      // The same sources as at start (file < environment < flags): only the file changed.
      auto again = joule::config::load(args, [](const char* n) { return std::getenv(n); },
                                       JOULE_DEFAULT_CONFIG);
      if (!again.error.empty()) {
        joule::log(joule::log_level::error, "config",
                   "reload refused, keeping the current settings: " + again.error);
        continue;
      }
      if (auto err = server.reload(again.values); !err.empty())
        joule::log(joule::log_level::error, "config",
                   "reload refused, keeping the current settings: " + err);
    }
    joule::log(joule::log_level::info, "main", "stopping");
    server.stop();
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "joule: " << e.what() << "\n";
    return 1;
  }
}
