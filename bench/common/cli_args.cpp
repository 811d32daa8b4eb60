#include "common/cli_args.hpp"

#include <cstdlib>
#include <sstream>
#include <stdexcept>

namespace joule::bench {

namespace {

[[noreturn]] void bad_value(const std::string& key, const std::string& value) {
  throw std::invalid_argument("bad value for --" + key + ": '" + value + "'");
}

} // namespace

cli_args::cli_args(int argc, char** argv) {
  int i = 1;
  if (i < argc && std::string(argv[i]).rfind("--", 0) != 0)
    subcommand_ = argv[i++];
  for (; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.rfind("--", 0) != 0 || arg.size() == 2)
      throw std::invalid_argument("unexpected argument '" + arg + "'");
    arg.erase(0, 2);
    auto eq = arg.find('=');
    if (eq != std::string::npos) {
      values_[arg.substr(0, eq)] = arg.substr(eq + 1);
    } else if (i + 1 < argc && std::string(argv[i + 1]).rfind("--", 0) != 0) {
      values_[arg] = argv[++i];
    } else {
      values_[arg] = "true";
    }
  }
}

std::string cli_args::get(const std::string& key, const std::string& fallback) const {
  auto it = values_.find(key);
  return it == values_.end() ? fallback : it->second;
}

int64_t cli_args::get_int(const std::string& key, int64_t fallback) const {
  auto it = values_.find(key);
  if (it == values_.end())
    return fallback;
  char* end = nullptr;
  long long v = std::strtoll(it->second.c_str(), &end, 10);
  if (it->second.empty() || *end != '\0')
    bad_value(key, it->second);
  return v;
}

double cli_args::get_double(const std::string& key, double fallback) const {
  auto it = values_.find(key);
  if (it == values_.end())
    return fallback;
  char* end = nullptr;
  double v = std::strtod(it->second.c_str(), &end);
  if (it->second.empty() || *end != '\0')
    bad_value(key, it->second);
  return v;
}

bool cli_args::get_bool(const std::string& key, bool fallback) const {
  auto it = values_.find(key);
  if (it == values_.end())
    return fallback;
  if (it->second == "true" || it->second == "1" || it->second == "yes")
    return true;
  if (it->second == "false" || it->second == "0" || it->second == "no")
    return false;
  bad_value(key, it->second);
}

std::chrono::milliseconds cli_args::get_duration(const std::string& key,
                                                 std::chrono::milliseconds fallback) const {
  auto it = values_.find(key);
  if (it == values_.end())
    return fallback;
  try {
    return parse_duration(it->second);
  } catch (const std::invalid_argument&) {
    bad_value(key, it->second);
  }
}

std::vector<double> cli_args::get_doubles(const std::string& key,
                                          std::vector<double> fallback) const {
  auto it = values_.find(key);
  if (it == values_.end())
    return fallback;
  std::vector<double> out;
  std::stringstream in(it->second);
  std::string item;
  while (std::getline(in, item, ',')) {
    char* end = nullptr;
    double v = std::strtod(item.c_str(), &end);
    if (item.empty() || *end != '\0')
      bad_value(key, it->second);
    out.push_back(v);
  }
  if (out.empty())
    bad_value(key, it->second);
  return out;
}

void cli_args::require_known(const std::vector<std::string>& known) const {
  for (const auto& [key, value] : values_) {
    bool found = false;
    for (const auto& k : known)
      found = found || k == key;
    if (!found)
      throw std::invalid_argument("unknown option --" + key);
  }
}

std::chrono::milliseconds parse_duration(const std::string& text) {
  char* end = nullptr;
  double v = std::strtod(text.c_str(), &end);
  if (text.empty() || end == text.c_str() || v < 0)
    throw std::invalid_argument("bad duration '" + text + "'");
  std::string unit(end);
  double ms = 0;
  if (unit.empty() || unit == "s")
    ms = v * 1000;
  else if (unit == "ms")
    ms = v;
  else if (unit == "m" || unit == "min")
    ms = v * 60'000;
  else if (unit == "h")
    ms = v * 3'600'000;
  else if (unit == "d")
    ms = v * 86'400'000;
  else
    throw std::invalid_argument("bad duration unit in '" + text + "'");
  return std::chrono::milliseconds(static_cast<int64_t>(ms + 0.5));
}

} // namespace joule::bench
