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

namespace {

// Length of the well-formed UTF-8 sequence at s[i] (RFC 3629: no overlong forms, no
// surrogates, nothing above U+10FFFF), or 0 when the bytes there are not one.
std::size_t utf8_sequence(const std::string& s, std::size_t i) {
  auto at = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  auto lead = at(i);
  std::size_t n = lead < 0x80 ? 1 : lead >= 0xc2 && lead <= 0xdf ? 2
                  : lead >= 0xe0 && lead <= 0xef                ? 3
                  : lead >= 0xf0 && lead <= 0xf4                ? 4
                                                                : 0;
  if (n == 0 || i + n > s.size())
    return 0;
  for (std::size_t k = 1; k < n; ++k)
    if ((at(i + k) & 0xc0) != 0x80)
      return 0;
  auto second = at(i + 1);
  if ((lead == 0xe0 && second < 0xa0) || (lead == 0xed && second > 0x9f) ||
      (lead == 0xf0 && second < 0x90) || (lead == 0xf4 && second > 0x8f))
    return 0;
  return n;
}

} // namespace

std::string json_quote(const std::string& s) {
  std::string out = "\"";
  for (std::size_t i = 0; i < s.size();) {
    char c = s[i];
    auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20 || u == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", u);
      out += buf;
    } else if (u >= 0x80) {
      // Bytes a client sent (a request target, a header) need not be UTF-8; a JSON line
      // carrying them raw is not JSON, and log shippers drop or mangle it.
      auto n = utf8_sequence(s, i);
      if (n == 0) {
        out += "\\ufffd";
        ++i;
        continue;
      }
      out.append(s, i, n);
      i += n;
      continue;
    } else {
      out += c;
    }
    ++i;
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
