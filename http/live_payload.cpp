#include "http/live_payload.hpp"

#include <charconv>
#include <cstdio>
#include <string_view>

namespace joule::http {

namespace {

// Doubles as text that reads back to the same value.
std::string exact(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}
std::string exact(const std::optional<double>& v) { return v ? exact(*v) : std::string(); }

// A number filling exactly [from, to), or nothing (no leading blanks, no trailing text).
template <class T>
std::optional<T> number(const char* from, const char* to) {
  T v{};
  auto [end, ec] = std::from_chars(from, to, v);
  if (from == to || ec != std::errc() || end != to)
    return std::nullopt;
  return v;
}

const char* find(const char* from, const char* to, char c) {
  for (; from != to; ++from)
    if (*from == c)
      return from;
  return nullptr;
}

// Walks a power payload, calling point(p) per bucket; false at the first malformed byte.
template <class Point>
bool scan_points(std::string_view text, Point point) {
  const char* s = text.data();
  const char* const e = s + text.size();
  while (s != e) {
    const char* c1 = find(s, e, ',');
    const char* c2 = c1 ? find(c1 + 1, e, ',') : nullptr;
    const char* semi = c2 ? find(c2 + 1, e, ';') : nullptr;
    if (!semi)
      return false;
    db::power_point p;
    auto t = number<std::int64_t>(s, c1);
    if (!t)
      return false;
    p.t = *t;
    if (c1 + 1 != c2 && !(p.avg = number<double>(c1 + 1, c2)))
      return false;
    if (c2 + 1 != semi && !(p.max = number<double>(c2 + 1, semi)))
      return false;
    point(p);
    s = semi + 1;
  }
  return true;
}

// Walks a top payload, calling hour(t) per hour and device(name, energy) per entry of it.
template <class Hour, class Device>
bool scan_hourly(std::string_view text, Hour hour, Device device) {
  const char* s = text.data();
  const char* const e = s + text.size();
  while (s != e) {
    const char* hash = find(s, e, '#');
    if (!hash)
      return false;
    auto t = number<std::int64_t>(s, hash);
    if (!t)
      return false;
    hour(*t);
    s = hash + 1;
    while (s != e && *s != ';') {
      const char* eq = find(s, e, '=');
      const char* comma = eq ? find(eq + 1, e, ',') : nullptr;
      if (!comma || eq == s || find(s, eq, ';') || find(eq + 1, comma, ';'))
        return false;
      auto energy = number<double>(eq + 1, comma);
      if (!energy)
        return false;
      device(std::string_view(s, static_cast<std::size_t>(eq - s)), *energy);
      s = comma + 1;
    }
    if (s == e)
      return false;  // every hour ends with ';'
    ++s;
  }
  return true;
}

} // namespace

std::string encode_part(const live_part& p) {
  return std::to_string(p.lo) + "|" + std::to_string(p.hi) + "|" + p.versions + "|" + p.payload;
}

std::optional<live_part> decode_part(const std::string& text) {
  auto a = text.find('|');
  auto b = a == std::string::npos ? a : text.find('|', a + 1);
  auto c = b == std::string::npos ? b : text.find('|', b + 1);
  if (c == std::string::npos)
    return std::nullopt;
  auto lo = number<std::int64_t>(text.data(), text.data() + a);
  auto hi = number<std::int64_t>(text.data() + a + 1, text.data() + b);
  if (!lo || !hi || *hi < *lo)
    return std::nullopt;
  return live_part{*lo, *hi, text.substr(b + 1, c - b - 1), text.substr(c + 1)};
}

void append_points(std::string& out, const std::vector<db::power_point>& points) {
  for (auto& p : points)
    out += std::to_string(p.t) + "," + exact(p.avg) + "," + exact(p.max) + ";";
}

std::optional<std::vector<db::power_point>> parse_points(const std::string& payload) {
  std::vector<db::power_point> out;
  if (!scan_points(payload, [&](const db::power_point& p) { out.push_back(p); }))
    return std::nullopt;
  return out;
}

bool points_well_formed(const std::string& payload) {
  return scan_points(payload, [](const db::power_point&) {});
}

std::string encode_hourly(const hourly& h) {
  std::string out;
  for (auto& [hour_start, devices] : h) {
    out += std::to_string(hour_start) + "#";
    for (auto& [d, e] : devices)
      out += d + "=" + exact(e) + ",";
    out += ";";
  }
  return out;
}

std::optional<hourly> decode_hourly(const std::string& payload) {
  hourly out;
  std::map<std::string, double>* at = nullptr;
  if (!scan_hourly(
          payload, [&](std::int64_t t) { at = &out[t]; },
          [&](std::string_view d, double e) { (*at)[std::string(d)] = e; }))
    return std::nullopt;
  return out;
}

bool hourly_well_formed(const std::string& payload) {
  return scan_hourly(payload, [](std::int64_t) {}, [](std::string_view, double) {});
}

} // namespace joule::http
