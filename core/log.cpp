#include "core/log.hpp"

#include <atomic>
#include <cstdio>

#include "core/timefmt.hpp"

namespace joule {
namespace {
std::atomic<int> min_level{static_cast<int>(log_level::info)};
const char* names[] = {"debug", "info", "warn", "error"};
} // namespace

void set_log_level(log_level lvl) { min_level = static_cast<int>(lvl); }

void log(log_level lvl, const char* component, const std::string& message) {
  if (static_cast<int>(lvl) < min_level.load(std::memory_order_relaxed))
    return;
  auto line = format_rfc3339(now_micros() / 1000 * 1000) + " " + names[static_cast<int>(lvl)] +
              " " + component + ": " + message + "\n";
  std::fwrite(line.data(), 1, line.size(), stderr);
}

} // namespace joule
