#include "db/session.hpp"

#include "config/settings.hpp"

#include <vector>

#include <pqxx/pqxx>

namespace joule::db {

std::string with_options(const std::string& url, std::chrono::milliseconds statement_timeout,
                         std::chrono::milliseconds connect_timeout) {
  auto secs = std::max<long long>(1, (connect_timeout.count() + 999) / 1000);
  std::string opts = "-c TimeZone=UTC";
  if (statement_timeout.count() > 0)
    opts += " -c statement_timeout=" + std::to_string(statement_timeout.count());
  bool is_uri = url.rfind("postgresql://", 0) == 0 || url.rfind("postgres://", 0) == 0;
  if (is_uri) {
    std::string enc;
    for (char c : opts)
      enc += c == ' ' ? std::string("%20") : c == '=' ? std::string("%3D") : std::string(1, c);
    std::string sep = url.find('?') == std::string::npos ? "?" : "&";
    return url + sep + "connect_timeout=" + std::to_string(secs) +
           "&application_name=joule&options=" + enc;
  }
  return url + " connect_timeout=" + std::to_string(secs) + " application_name=joule options='" +
         opts + "'";
}

session::session(std::string url, std::chrono::milliseconds statement_timeout,
                 std::chrono::milliseconds connect_timeout)
  : url_(std::move(url)), statement_timeout_(statement_timeout),
    connect_timeout_(connect_timeout) {
  open();
}

std::string hide_password(std::string message, const std::string& url) {
  for (auto [offset, length] : config::password_spans(url)) {
    auto pw = url.substr(offset, length);
    if (pw.empty())
      continue;
    for (auto at = message.find(pw); at != std::string::npos; at = message.find(pw, at + 3))
      message.replace(at, pw.size(), "***");
  }
  return message;
}

void session::open() {
  try {
    conn_ = std::make_unique<pqxx::connection>(
        with_options(url_, statement_timeout_, connect_timeout_));
  } catch (const pqxx::broken_connection& e) {
    // Callers log this message (db_worker, replica monitor, listeners).
    throw pqxx::broken_connection{hide_password(e.what(), url_)};
  }
}

void session::prepare(const std::string& name, const std::string& sql) {
  if (prepared_.count(name))
    return;
  conn_->prepare(name, sql);
  prepared_.insert(name);
}

void session::reconnect() {
  prepared_.clear();
  once_.clear();
  conn_.reset();
  open();
}

void session::ping() {
  pqxx::nontransaction q{*conn_};
  q.exec("SELECT 1");
}

int session::backend_pid() const { return conn_->backendpid(); }

bool is_connection_error(const std::exception& e) {
  if (dynamic_cast<const pqxx::broken_connection*>(&e))
    return true;
  // Admin shutdown / terminated backend can surface as an sql_error (57P01..57P03).
  auto state = sqlstate_of(e);
  return state.rfind("57P", 0) == 0 || state.rfind("08", 0) == 0;
}

std::string sqlstate_of(const std::exception& e) {
  if (auto* se = dynamic_cast<const pqxx::sql_error*>(&e))
    return se->sqlstate();
  return {};
}

} // namespace joule::db
