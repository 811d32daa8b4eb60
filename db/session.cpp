#include "db/session.hpp"

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

namespace {

// The raw password tokens of a URI or key=value string (as written, before any decoding).
std::vector<std::string> passwords_in(const std::string& v) {
  std::vector<std::string> out;
  auto scheme = v.find("://");
  if (scheme != std::string::npos) {
    auto start = scheme + 3;
    auto at = v.find('@', start);
    auto slash = v.find_first_of("/?", start);
    if (at != std::string::npos && (slash == std::string::npos || at < slash)) {
      auto colon = v.find(':', start);
      if (colon != std::string::npos && colon < at)
        out.push_back(v.substr(colon + 1, at - colon - 1));
    }
    for (auto q = v.find("password="); q != std::string::npos; q = v.find("password=", q + 1)) {
      auto end = v.find('&', q);
      out.push_back(v.substr(q + 9, (end == std::string::npos ? v.size() : end) - q - 9));
    }
    return out;
  }
  for (auto q = v.find("password"); q != std::string::npos; q = v.find("password", q + 1)) {
    auto eq = v.find_first_not_of(' ', q + 8);
    if (eq == std::string::npos || v[eq] != '=')
      continue;
    auto b = v.find_first_not_of(' ', eq + 1);
    if (b == std::string::npos)
      break;
    auto e = v[b] == '\'' ? v.find('\'', b + 1) : v.find(' ', b);
    if (v[b] == '\'')
      ++b;
    out.push_back(v.substr(b, (e == std::string::npos ? v.size() : e) - b));
  }
  return out;
}

} // namespace

std::string hide_password(std::string message, const std::string& url) {
  for (auto& pw : passwords_in(url)) {
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
