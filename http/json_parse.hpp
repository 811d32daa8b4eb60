#pragma once
// Parsing of untrusted JSON request bodies (POST /telemetry, /alerts/rules). RapidJSON's
// default parser recurses once per nesting level, so a body of 200,000 '[' overflowed the
// stack and killed the server. This helper parses iteratively (the parser's own stack is on
// the heap, bounded by the body size) and refuses nesting deeper than a cap before building
// anything below it. Every JSON endpoint uses it; nothing else calls Document::Parse on
// request input.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <rapidjson/document.h>

namespace joule::http {

/// Default of `http.json_max_depth`.
constexpr int default_json_max_depth = 32;

struct json_error {
  enum class kind_t { syntax, too_deep };
  kind_t kind = kind_t::syntax;
  std::size_t offset = 0;  // byte offset in the body where parsing stopped
  std::string message;     // "malformed JSON at offset N: <reason>"; too deep names the cap
};

/// Parses `body` into `doc`: strict JSON (NaN and Infinity are errors), numbers at full
/// precision, the whole body must be one value. Depth counts open containers: `1` and `[]`
/// are depths 0 and 1, `{"a":[{}]}` is 3; a body deeper than `max_depth` is refused with
/// kind too_deep ("nesting deeper than N levels"). Returns nullopt on success; on an error
/// `doc` is left null. Cost is linear in the body size and never uses the call stack in
/// proportion to the input.
std::optional<json_error> parse_json(std::string_view body, rapidjson::Document& doc,
                                     int max_depth);

/// An integer given as a JSON number: 300 and 300.0 are accepted, 300.5, non-finite values and
/// doubles beyond ±9e15 (where the conversion would lose digits or be undefined) are not.
std::optional<std::int64_t> json_integer(const rapidjson::Value& v);

} // namespace joule::http
