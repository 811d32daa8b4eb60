#include "tests/support/pg_test_db.hpp"

#include <cstdlib>
#include <stdexcept>

#include <unistd.h>

#include <pqxx/pqxx>

#include "db/migrations.hpp"
#include "db/session.hpp"

namespace joule::test {

std::string admin_connection() {
  const char* v = std::getenv("JOULE_TEST_PG");
  if (!v || !*v)
    throw std::runtime_error("JOULE_TEST_PG is not set: run the tests through scripts/test");
  return v;
}

pg_test_db::pg_test_db(const std::string& prefix, bool migrate)
  : admin_(admin_connection()), name_(prefix + "_" + std::to_string(::getpid())) {
  pqxx::connection c{admin_};
  pqxx::nontransaction q{c};
  q.exec("DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
  q.exec("CREATE DATABASE " + name_);
  // Swap dbname=... in the keyword string.
  url_ = admin_;
  auto pos = url_.find("dbname=");
  if (pos == std::string::npos) {
    url_ += " dbname=" + name_;
  } else {
    auto end = url_.find(' ', pos);
    url_.replace(pos, end == std::string::npos ? std::string::npos : end - pos, "dbname=" + name_);
  }
  if (migrate) {
    db::session s{url_};
    db::migrate(s);
  }
}

pg_test_db::~pg_test_db() {
  try {
    pqxx::connection c{admin_};
    pqxx::nontransaction q{c};
    q.exec("DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
  } catch (...) {
  }
}

void pg_test_db::exec(const std::string& sql) const {
  pqxx::connection c{url_ + " options='-c TimeZone=UTC'"};
  pqxx::nontransaction q{c};
  q.exec(sql);
}

std::string pg_test_db::scalar(const std::string& sql) const {
  pqxx::connection c{url_ + " options='-c TimeZone=UTC'"};
  pqxx::nontransaction q{c};
  auto r = q.exec(sql);
  if (r.empty() || r[0][0].is_null())
    return {};
  return r[0][0].as<std::string>();
}

} // namespace joule::test
