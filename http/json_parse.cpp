#include "http/json_parse.hpp"

#include "http/json_numbers.hpp"

#include <cmath>
#include <cstring>

#include <rapidjson/encodedstream.h>
#include <rapidjson/error/en.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>

namespace joule::http {
namespace {

using rapidjson::SizeType;

// Forwards SAX events to the document being built and stops the parser (a handler returning
// false ends it with kParseErrorTermination) as soon as a container opens beyond the cap, so
// nothing deeper is ever allocated.
struct depth_capped {
  rapidjson::Document& doc;
  int max_depth;
  int depth = 0;
  bool too_deep = false;
  bool nul_in_string = false;

  bool open() {
    if (++depth > max_depth) {
      too_deep = true;
      return false;
    }
    return true;
  }

  bool Null() { return doc.Null(); }
  bool Bool(bool b) { return doc.Bool(b); }
  bool Int(int i) { return doc.Int(i); }
  bool Uint(unsigned i) { return doc.Uint(i); }
  bool Int64(std::int64_t i) { return doc.Int64(i); }
  bool Uint64(std::uint64_t i) { return doc.Uint64(i); }
  bool Double(double d) { return doc.Double(d); }
  // Numbers arrive as text (exact_numbers_flags) and are converted exactly: RapidJSON's own
  // full-precision conversion is wrong at the edges (http/json_numbers.hpp).
  bool RawNumber(const char* s, SizeType n, bool) {
    return forward_json_number(doc, std::string_view(s, n));
  }
  // "\u0000" is valid JSON, but no text column (PostgreSQL text and jsonb refuse it) nor C
  // string can hold it: refused here, for every endpoint, as malformed input.
  bool no_nul(const char* s, SizeType n) {
    if (std::memchr(s, 0, n) == nullptr)
      return true;
    nul_in_string = true;
    return false;
  }
  bool String(const char* s, SizeType n, bool copy) {
    return no_nul(s, n) && doc.String(s, n, copy);
  }
  bool Key(const char* s, SizeType n, bool copy) { return no_nul(s, n) && doc.Key(s, n, copy); }
  bool StartObject() { return open() && doc.StartObject(); }
  bool EndObject(SizeType members) {
    --depth;
    return doc.EndObject(members);
  }
  bool StartArray() { return open() && doc.StartArray(); }
  bool EndArray(SizeType elements) {
    --depth;
    return doc.EndArray(elements);
  }
};

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

} // namespace

std::optional<std::int64_t> json_integer(const rapidjson::Value& v) {
  if (v.IsInt64())
    return v.GetInt64();
  if (v.IsDouble()) {
    double d = v.GetDouble();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9e15)
      return static_cast<std::int64_t>(d);
  }
  return std::nullopt;
}

std::optional<json_error> parse_json(std::string_view body, rapidjson::Document& doc,
                                     int max_depth) {
  // Iterative: the parser keeps its state on a heap stack instead of recursing per level.
  // Strict JSON: NaN and Infinity literals are parse errors, as the standard says.
  // Invalid UTF-8 is refused too: the database is UTF8 and would answer the insert with an
  // error (a 500) instead of this 400.
  constexpr unsigned flags =
      rapidjson::kParseIterativeFlag | rapidjson::kParseValidateEncodingFlag | exact_numbers_flags;
  doc.SetNull();
  // RapidJSON's streams read a NUL byte as the end of input, so "{}\0anything" would pass.
  // A raw NUL is never valid JSON (inside strings it must be escaped): refuse it outright.
  if (auto nul = body.find('\0'); nul != std::string_view::npos)
    return json_error{json_error::kind_t::syntax, nul,
                      "malformed JSON at offset " + std::to_string(nul) + ": NUL byte"};
  rapidjson::ParseResult result;
  depth_capped handler{doc, max_depth};
  auto generate = [&](rapidjson::Document& d) {
    (void)d;  // the handler forwards to `doc`, which is `d`
    rapidjson::MemoryStream ms(body.data(), body.size());
    rapidjson::EncodedInputStream<rapidjson::UTF8<>, rapidjson::MemoryStream> is(ms);
    rapidjson::Reader reader;
    result = reader.Parse<flags>(is, handler);
    return !result.IsError();
  };
  // Populate clears the document's value stack on every exit, also after an abort midway.
  doc.Populate(generate);
  if (!result.IsError())
    return std::nullopt;
  doc.SetNull();
  json_error e;
  e.offset = result.Offset();
  std::string reason;
  if (handler.too_deep) {
    e.kind = json_error::kind_t::too_deep;
    reason = "nesting deeper than " + std::to_string(max_depth) + " levels";
  } else if (handler.nul_in_string) {
    reason = "strings must not contain U+0000";
  } else {
    auto rest = e.offset < body.size() ? body.substr(e.offset, 9) : std::string_view{};
    bool non_finite =
        starts_with(rest, "NaN") || starts_with(rest, "Infinity") || starts_with(rest, "-Infinity");
    reason = non_finite ? "NaN and Infinity are not numbers in JSON"
                        : rapidjson::GetParseError_En(result.Code());
  }
  e.message = "malformed JSON at offset " + std::to_string(e.offset) + ": " + reason;
  return e;
}

} // namespace joule::http
