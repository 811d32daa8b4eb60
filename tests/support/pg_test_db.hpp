#pragma once
// A private PostgreSQL database for one test binary, on the server that scripts/test started
// (env JOULE_TEST_PG, a libpq keyword string). Created on construction, dropped at the end.

#include <string>

namespace joule::test {

class pg_test_db {
public:
  /// Creates database `<prefix>_<pid>` (dropping a leftover one) and applies migrations
  /// unless `migrate` is false.
  explicit pg_test_db(const std::string& prefix, bool migrate = true);
  ~pg_test_db();
  /// Connection string for the private database.
  const std::string& url() const { return url_; }
  /// Runs SQL on the private database (test set-up and checks).
  void exec(const std::string& sql) const;
  /// First column of the first row as text ("" for NULL or no rows).
  std::string scalar(const std::string& sql) const;

private:
  std::string admin_;
  std::string name_;
  std::string url_;
};

/// The server from JOULE_TEST_PG; fails the test run if it is not set.
std::string admin_connection();

} // namespace joule::test
