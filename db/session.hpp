#pragma once
// One PostgreSQL connection and what belongs to it (prepared statements), used by exactly one
// thread. Plain C++: no actors, so it can be tested and reused by tools directly.

#include <chrono>
#include <memory>
#include <set>
#include <string>

#include <pqxx/connection>

namespace joule::db {

class session {
public:
  /// Connects at once; throws pqxx::broken_connection if the server is unreachable.
  /// `statement_timeout` of zero leaves the server default.
  explicit session(std::string url,
                   std::chrono::milliseconds statement_timeout = std::chrono::milliseconds{0},
                   std::chrono::milliseconds connect_timeout = std::chrono::milliseconds{2000});

  pqxx::connection& conn() { return *conn_; }
  const std::string& url() const { return url_; }

  /// Prepares `sql` under `name` the first time a name is seen on this connection.
  void prepare(const std::string& name, const std::string& sql);

  /// True the first time `key` is asked on this connection (again after a reconnect): lazy
  /// per-connection set-up by the code that needs it.
  bool first_time(const std::string& key) { return once_.insert(key).second; }

  /// Drops the connection and opens a new one (prepared statements are forgotten).
  void reconnect();

  /// Round trip `SELECT 1`; throws like any query when the connection is gone.
  void ping();

  /// Backend process id (for tests that kill it).
  int backend_pid() const;

private:
  void open();
  std::string url_;
  std::chrono::milliseconds statement_timeout_;
  std::chrono::milliseconds connect_timeout_;
  std::unique_ptr<pqxx::connection> conn_;
  std::set<std::string> prepared_;
  std::set<std::string> once_;
};

/// Adds libpq options (connect_timeout, statement_timeout, application_name) to a URL or a
/// key=value connection string.
std::string with_options(const std::string& url, std::chrono::milliseconds statement_timeout,
                         std::chrono::milliseconds connect_timeout);

/// `message` with every password `url` carries (URI user info, ?password=, key=value
/// password=) replaced by ***: libpq quotes the raw token it cannot parse ("invalid
/// percent-encoded token: \"pa%zz\""), and connection errors go to the logs.
std::string hide_password(std::string message, const std::string& url);

/// True for errors after which the connection must be recreated.
bool is_connection_error(const std::exception& e);

/// SQLSTATE of a pqxx::sql_error, empty otherwise.
std::string sqlstate_of(const std::exception& e);

} // namespace joule::db
