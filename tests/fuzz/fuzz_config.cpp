// Fuzz target: settings loading (config::load) from a config file, the environment and
// command-line flags. Input: the config file's text, then NUL-separated tokens: a token
// `JOULE_NAME=value` is an environment variable, any other token a command-line argument.
// Loaded settings must print (`--help`, the option getters) as values that load again to the
// same text.

#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "config/settings.hpp"
#include "tests/fuzz/fuzz_check.hpp"

using namespace joule::config;

namespace {

// The config file lives in memory; load() opens it by path like any file.
struct memory_file {
  int fd = ::memfd_create("joule-fuzz.conf", 0);
  std::string path = "/proc/self/fd/" + std::to_string(fd);

  void write(const std::string& text) const {
    FUZZ_CHECK(fd >= 0);
    FUZZ_CHECK(::ftruncate(fd, 0) == 0);
    FUZZ_CHECK(::pwrite(fd, text.data(), text.size(), 0) == static_cast<ssize_t>(text.size()));
  }
};

const memory_file& config_file() {
  static const memory_file f;
  return f;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string in(reinterpret_cast<const char*>(data), size);
  auto nul = in.find('\0');
  config_file().write(in.substr(0, nul));

  std::vector<std::string> args;
  std::map<std::string, std::string> env;
  for (auto i = nul; i != std::string::npos && i < in.size();) {
    auto j = in.find('\0', i + 1);
    auto token = in.substr(i + 1, j == std::string::npos ? std::string::npos : j - i - 1);
    i = j;
    // Another file than the fuzzed one would be read from the disk (or block on a FIFO).
    if (token.rfind("--config", 0) == 0 || token.rfind("JOULE_CONFIG=", 0) == 0)
      continue;
    auto eq = token.find('=');
    if (token.rfind("JOULE_", 0) == 0 && eq != std::string::npos)
      env[token.substr(0, eq)] = token.substr(eq + 1);
    else
      args.push_back(token);
  }
  auto getenv = [&env](const char* name) -> const char* {
    auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  };

  auto r = load(args, getenv, config_file().path);
  if (!r.error.empty() || r.help)
    return 0;
  FUZZ_CHECK(r.values.cache_jitter_min_pct <= r.values.cache_jitter_max_pct);
  for (auto& [name, p] : r.values.refresh_policies)
    FUZZ_CHECK(p.start_offset > p.end_offset);
  // Every value prints as text the same option accepts and prints again unchanged.
  for (auto& o : options()) {
    auto text = o.get(r.values);
    settings copy;
    auto err = o.set(copy, text);
    if (!err.empty()) {
      std::fprintf(stderr, "%s = '%s' does not load back: %s\n", o.key.c_str(), text.c_str(),
                   err.c_str());
      FUZZ_CHECK(err.empty());
    }
    FUZZ_CHECK(o.get(copy) == text);
  }
  return 0;
}
