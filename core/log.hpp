#pragma once
// Minimal structured logging to stderr (CAF's logger is compiled out in Debian's build).

#include <string>

namespace joule {

enum class log_level { debug, info, warn, error };

/// Sets the lowest level printed (default info; JOULE_LOG_LEVEL=debug|info|warn|error).
void set_log_level(log_level lvl);

/// One line: `2026-11-27T12:00:00.123Z level component: message`.
void log(log_level lvl, const char* component, const std::string& message);

} // namespace joule
