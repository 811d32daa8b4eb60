#pragma once
// Minimal structured logging to stderr (CAF's logger is compiled out in Debian's build).
// Text lines by default; JSON lines (one object per line) with log.format = json. Level,
// format and the access log can change while running (SIGHUP reloads them).

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace joule {

enum class log_level { debug, info, warn, error };
enum class log_format { text, json };

/// Sets the lowest level printed (default info; setting log.level).
void set_log_level(log_level lvl);
log_level current_log_level();
/// "debug" | "info" | "warn" | "error".
std::optional<log_level> parse_log_level(const std::string& text);
/// Text (default) or JSON lines (setting log.format).
void set_log_format(log_format f);
log_format current_log_format();
std::optional<log_format> parse_log_format(const std::string& text);
/// Whether every HTTP request writes an access line (setting log.access; off until set).
void set_access_log(bool on);
bool access_log_enabled();

/// An extra field of one line, e.g. {"status", "200", true}. `number`: written unquoted in
/// JSON (the caller guarantees it is a number).
struct log_field {
  std::string key;
  std::string value;
  bool number = false;
};
using log_fields = std::vector<log_field>;

/// One line. Text: `2026-11-27T12:00:00.123Z level component: message key=value ...`;
/// JSON: `{"ts":…,"level":…,"component":…,"msg":…,"request_id":…,key:value…}`. The request
/// id of the request being handled on this thread (request_scope) is added when set.
void log(log_level lvl, const char* component, const std::string& message,
         const log_fields& fields = {});

/// While alive, lines logged on this thread carry `request_id` (the handler's synchronous
/// part; work it hands to other actors logs without it).
class request_scope {
public:
  explicit request_scope(std::string request_id);
  ~request_scope();
  request_scope(const request_scope&) = delete;
  request_scope& operator=(const request_scope&) = delete;

private:
  std::string id_;  // a copy: the scope may outlive the string it was made from
  const std::string* outer_;
};

/// The request id of this thread's request_scope, or null.
const std::string* current_request_id();

/// `s` as a JSON string literal (quotes included; control characters escaped; bytes that are
/// not well-formed UTF-8 become U+FFFD, so the result is always valid JSON).
std::string json_quote(const std::string& s);

} // namespace joule
