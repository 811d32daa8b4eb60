#include "core/log.hpp"

#include <atomic>
#include <cstdio>
#include <utility>

#include "core/timefmt.hpp"

namespace joule {
namespace {
std::atomic<int> min_level{static_cast<int>(log_level::info)};
std::atomic<int> format{static_cast<int>(log_format::text)};
// Off until the process applies log.access (joule's main does; in-process test servers stay
// quiet instead of writing a line per request).
std::atomic<bool> access{false};
thread_local const std::string* scope_id = nullptr;
const char* names[] = {"debug", "info", "warn", "error"};

// Text lines stay one line each: control characters in a value (a message quoting client
// input) become '?', so nobody can forge a second line.
void append_text(std::string& out, const std::string& s) {
  for (char c : s)
    out += static_cast<unsigned char>(c) < 0x20 || c == 0x7f ? '?' : c;
}

} // namespace

void set_log_level(log_level lvl) { min_level = static_cast<int>(lvl); }
log_level current_log_level() { return static_cast<log_level>(min_level.load()); }

std::optional<log_level> parse_log_level(const std::string& text) {
  for (int i = 0; i < 4; ++i)
    if (text == names[i])
      return static_cast<log_level>(i);
  return std::nullopt;
}

void set_log_format(log_format f) { format = static_cast<int>(f); }
log_format current_log_format() { return static_cast<log_format>(format.load()); }

std::optional<log_format> parse_log_format(const std::string& text) {
  if (text == "text")
    return log_format::text;
  if (text == "json")
    return log_format::json;
  return std::nullopt;
}

void set_access_log(bool on) { access = on; }
bool access_log_enabled() { return access.load(std::memory_order_relaxed); }

request_scope::request_scope(std::string request_id)
  : id_(std::move(request_id)), outer_(scope_id) {
  scope_id = &id_;
}
request_scope::~request_scope() { scope_id = outer_; }
const std::string* current_request_id() { return scope_id; }

std::string json_quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20 || u == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", u);
      out += buf;
    } else {
      out += c;  // UTF-8 passes through; invalid bytes are the client's (kept as sent)
    }
  }
  return out + "\"";
}

void log(log_level lvl, const char* component, const std::string& message,
         const log_fields& fields) {
  if (static_cast<int>(lvl) < min_level.load(std::memory_order_relaxed))
    return;
  auto ts = format_rfc3339(now_micros() / 1000 * 1000);
  const std::string* rid = scope_id;
  std::string line;
  line.reserve(128 + message.size());
  if (format.load(std::memory_order_relaxed) == static_cast<int>(log_format::json)) {
    line += "{\"ts\":\"" + ts + "\",\"level\":\"" + names[static_cast<int>(lvl)] +
            "\",\"component\":" + json_quote(component) + ",\"msg\":" + json_quote(message);
    if (rid)
      line += ",\"request_id\":" + json_quote(*rid);
    for (auto& f : fields)
      line += "," + json_quote(f.key) + ":" + (f.number ? f.value : json_quote(f.value));
    line += "}\n";
  } else {
    line += ts + " " + names[static_cast<int>(lvl)] + " " + component + ": ";
    append_text(line, message);
    if (rid) {
      line += " request_id=";
      append_text(line, *rid);
    }
    for (auto& f : fields) {
      line += " " + f.key + "=";
      append_text(line, f.value);
    }
    line += "\n";
  }
  std::fwrite(line.data(), 1, line.size(), stderr);
}

} // namespace joule
