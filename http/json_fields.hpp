#pragma once
// Writing JSON fields with RapidJSON: one call per "key": value, with null for absent
// optionals. Shared by every renderer (http/render.cpp, the alerts feature's payloads).

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "core/timefmt.hpp"

namespace joule::http::json {

using writer = rapidjson::Writer<rapidjson::StringBuffer>;

inline void field(writer& w, const char* k, const std::string& v) {
  w.Key(k);
  w.String(v.c_str(), static_cast<rapidjson::SizeType>(v.size()));
}
inline void field(writer& w, const char* k, const char* v) { field(w, k, std::string(v)); }
inline void field(writer& w, const char* k, double v) {
  w.Key(k);
  w.Double(v);
}
inline void field(writer& w, const char* k, int v) {
  w.Key(k);
  w.Int(v);
}
inline void field(writer& w, const char* k, std::int64_t v) {
  w.Key(k);
  w.Int64(v);
}
inline void field(writer& w, const char* k, bool v) {
  w.Key(k);
  w.Bool(v);
}
/// The value, or null when absent.
template <class T>
void field(writer& w, const char* k, const std::optional<T>& v) {
  if (v) {
    field(w, k, *v);
  } else {
    w.Key(k);
    w.Null();
  }
}
/// An instant (µs since the epoch) as RFC 3339.
inline void time_field(writer& w, const char* k, std::int64_t us) {
  field(w, k, format_rfc3339(us));
}
/// An instant, or null when absent.
inline void time_field(writer& w, const char* k, const std::optional<std::int64_t>& us) {
  field(w, k, us ? std::optional<std::string>(format_rfc3339(*us)) : std::nullopt);
}
/// A string, or null when empty.
inline void text_or_null(writer& w, const char* k, const std::string& v) {
  field(w, k, v.empty() ? std::nullopt : std::optional<std::string>(v));
}

/// The JSON text `write(w, value)` writes.
template <class T, class Write>
std::string render(const T& value, Write write) {
  rapidjson::StringBuffer buf;
  writer w{buf};
  write(w, value);
  return std::string(buf.GetString(), buf.GetSize());
}

/// `{"<key>":[...]}`, each element written by `write(w, element)`.
template <class T, class Write>
std::string render_list(const char* key, const std::vector<T>& values, Write write) {
  rapidjson::StringBuffer buf;
  writer w{buf};
  w.StartObject();
  w.Key(key);
  w.StartArray();
  for (auto& v : values)
    write(w, v);
  w.EndArray();
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

} // namespace joule::http::json
