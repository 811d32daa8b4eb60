#include "http/router.hpp"

#include <cctype>
#include <cstdlib>
#include <vector>

#include "core/timefmt.hpp"

namespace joule::http {
namespace {

constexpr std::int64_t minute = 60 * micros_per_second;
constexpr std::int64_t hour = 60 * minute;

std::vector<std::string> split_path(const std::string& path) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < path.size()) {
    if (path[i] == '/') {
      ++i;
      continue;
    }
    auto j = path.find('/', i);
    if (j == std::string::npos)
      j = path.size();
    out.push_back(path.substr(i, j - i));
    i = j;
  }
  return out;
}

api_error bad(const std::string& code, const std::string& message) {
  return {400, code, message};
}

// Rejects parameters the endpoint does not know, so typos do not pass silently.
std::optional<api_error> check_known(const matched& m, std::initializer_list<const char*> known) {
  if (!m.bad_query.empty())
    return bad("bad_query", m.bad_query);
  for (auto& [k, v] : m.query) {
    bool ok = false;
    for (auto* n : known)
      ok |= k == n;
    if (!ok)
      return bad("unknown_parameter", "unknown query parameter '" + k + "'");
  }
  return std::nullopt;
}

series_request parse_series(const matched& m, std::int64_t now, const limits& lim,
                            const char* id_name, std::initializer_list<const char*> steps,
                            const char* default_step, std::int64_t default_span) {
  if (auto e = check_known(m, {"start", "end", "step"}))
    return *e;
  db::series_query q;
  auto id = normalize_uuid(m.id);
  if (!id)
    return bad("invalid_" + std::string(id_name), std::string(id_name) + " '" + m.id +
                                                      "' is not a valid UUID");
  q.id = *id;
  auto step_text = m.query.count("step") ? m.query.at("step") : std::string(default_step);
  bool allowed = false;
  for (auto* s : steps)
    allowed |= step_text == s;
  auto step = parse_step(step_text);
  if (!allowed || !step) {
    std::string list;
    for (auto* s : steps)
      list += (list.empty() ? "" : ", ") + std::string(s);
    return bad("invalid_step", "step '" + step_text + "' is not supported; use one of " + list);
  }
  q.step = *step;
  std::optional<std::int64_t> start, end;
  for (auto [name, slot] : {std::pair{"start", &start}, std::pair{"end", &end}}) {
    if (!m.query.count(name))
      continue;
    auto t = parse_rfc3339(m.query.at(name));
    if (!t)
      return bad("invalid_" + std::string(name),
                 std::string(name) + " '" + m.query.at(name) +
                     "' is not an RFC 3339 timestamp (e.g. 2026-11-27T12:00:00Z)");
    *slot = *t;
  }
  // An empty request is the caller's mistake, whatever alignment would make of it.
  if (start && end && *start >= *end)
    return bad("invalid_range", "start (" + format_rfc3339(*start) + ") must be before end (" +
                                    format_rfc3339(*end) + ")");
  // Bounds are aligned to the step (start down, end up) before anything else: every bucket is
  // then the whole of [t, t + step), whichever tier serves it (a rollup holds whole buckets
  // only, so a partial first or last bucket would depend on where the watermarks are), the
  // answer echoes the range it really covers, and unaligned requests share the cache key of
  // the aligned one.
  if (start)
    start = floor_to(*start, q.step);
  if (end)
    end = ceil_to(*end, q.step);
  // Defaults end at the current bucket's end, so repeated dashboard requests share a key.
  const std::int64_t current_end = floor_to(now, q.step) + q.step;
  if (!end)
    end = start ? std::max(*start + q.step, current_end) : current_end;
  if (!start)
    start = *end - default_span;
  q.start = *start;
  q.end = *end;
  // Counted on the aligned range: that is what the query reads and returns.
  auto points = (q.end - q.start) / q.step;
  if (points > lim.max_points)
    return bad("range_too_large", "the range " + format_rfc3339(q.start) + " to " +
                                      format_rfc3339(q.end) + " holds " +
                                      std::to_string(points) + " buckets of " + step_text +
                                      "; at most " + std::to_string(lim.max_points) +
                                      " are allowed");
  return q;
}

} // namespace

std::optional<std::string> url_decode(const std::string& s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '%') {
      if (i + 2 >= s.size() || !std::isxdigit(static_cast<unsigned char>(s[i + 1])) ||
          !std::isxdigit(static_cast<unsigned char>(s[i + 2])))
        return std::nullopt;
      out += static_cast<char>(std::strtol(s.substr(i + 1, 2).c_str(), nullptr, 16));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

parsed_target parse_target(const std::string& target) {
  parsed_target m;
  auto qpos = target.find('?');
  auto raw_path = target.substr(0, qpos);
  auto path = url_decode(raw_path, false).value_or(raw_path);
  if (qpos != std::string::npos) {
    auto qs = target.substr(qpos + 1);
    size_t i = 0;
    while (i <= qs.size()) {
      auto j = qs.find('&', i);
      if (j == std::string::npos)
        j = qs.size();
      auto part = qs.substr(i, j - i);
      if (!part.empty()) {
        auto eq = part.find('=');
        auto k = url_decode(part.substr(0, eq), true);
        auto v = url_decode(eq == std::string::npos ? "" : part.substr(eq + 1), true);
        if (!k || !v)
          m.bad_query = "malformed percent-encoding in query string";
        else if (m.query.count(*k))
          m.bad_query = "query parameter '" + *k + "' given twice";
        else
          m.query[*k] = *v;
      }
      i = j + 1;
    }
  }
  m.segments = split_path(path);
  return m;
}

std::optional<std::string> normalize_uuid(const std::string& text) {
  if (text.size() != 36)
    return std::nullopt;
  std::string out = text;
  for (size_t i = 0; i < out.size(); ++i) {
    bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash) {
      if (out[i] != '-')
        return std::nullopt;
    } else {
      if (!std::isxdigit(static_cast<unsigned char>(out[i])))
        return std::nullopt;
      out[i] = static_cast<char>(std::tolower(static_cast<unsigned char>(out[i])));
    }
  }
  return out;
}

std::optional<std::int64_t> parse_step(const std::string& text) {
  if (text == "1m")
    return minute;
  if (text == "5m")
    return 5 * minute;
  if (text == "1h")
    return hour;
  return std::nullopt;
}

series_request parse_energy(const matched& m, std::int64_t now, const limits& lim) {
  return parse_series(m, now, lim, "household_id", {"5m", "1h"}, "5m", 24 * hour);
}

series_request parse_power(const matched& m, std::int64_t now, const limits& lim) {
  return parse_series(m, now, lim, "device_id", {"1m", "5m", "1h"}, "1m", hour);
}

top_request parse_top(const matched& m, std::int64_t now, const limits& lim) {
  if (auto e = check_known(m, {"limit"}))
    return *e;
  db::top_query q;
  auto id = normalize_uuid(m.id);
  if (!id)
    return bad("invalid_household_id", "household_id '" + m.id + "' is not a valid UUID");
  q.household_id = *id;
  if (m.query.count("limit")) {
    const auto& t = m.query.at("limit");
    char* endp = nullptr;
    long v = std::strtol(t.c_str(), &endp, 10);
    if (t.empty() || *endp != '\0' || v < 1 || v > lim.top_limit_max)
      return bad("invalid_limit", "limit '" + t + "' must be an integer from 1 to " +
                                      std::to_string(lim.top_limit_max));
    q.limit = static_cast<int>(v);
  }
  // The 24 hourly buckets ending with the current one: aligned to the hour like every series
  // (see parse_series), so the window holds whole buckets only.
  q.end = floor_to(now, hour) + hour;
  q.start = q.end - 24 * hour;
  return q;
}

} // namespace joule::http
