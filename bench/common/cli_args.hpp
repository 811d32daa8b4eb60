#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace joule::bench {

/// Command line of the form `PROGRAM [SUBCOMMAND] [--key value | --key=value | --flag]...`.
/// A flag that is followed by another `--option` (or nothing) has the value "true".
class cli_args {
public:
  /// Throws std::invalid_argument on a stray positional argument after the subcommand.
  cli_args(int argc, char** argv);

  const std::string& subcommand() const { return subcommand_; }
  bool has(const std::string& key) const { return values_.count(key) != 0; }

  std::string get(const std::string& key, const std::string& fallback) const;
  /// The following throw std::invalid_argument naming the key when the value does not parse.
  int64_t get_int(const std::string& key, int64_t fallback) const;
  double get_double(const std::string& key, double fallback) const;
  bool get_bool(const std::string& key, bool fallback) const;
  std::chrono::milliseconds get_duration(const std::string& key,
                                         std::chrono::milliseconds fallback) const;
  /// Comma-separated list of numbers, e.g. `--rates 1000,2000,5000`.
  std::vector<double> get_doubles(const std::string& key, std::vector<double> fallback) const;

  /// Throws std::invalid_argument naming the first option not in `known`.
  void require_known(const std::vector<std::string>& known) const;

private:
  std::string subcommand_;
  std::map<std::string, std::string> values_;
};

/// "250ms", "10s", "5m", "2h", "1d"; a bare number means seconds. Throws std::invalid_argument.
std::chrono::milliseconds parse_duration(const std::string& text);

} // namespace joule::bench
