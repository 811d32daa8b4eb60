#pragma once
// Exact conversion of the numbers in untrusted JSON. RapidJSON 1.1.0's full-precision
// conversion (kParseFullPrecisionFlag) is wrong at the edges: a zero significand with a large
// exponent makes it count the leading zeros of 0 (undefined behaviour), and a value just past
// the double range wraps; the release build read "0e308" as -6.5e119, "-0e300" as 1.9e109 and
// "1.7976931348623157e309" as -5.6e-308 (found by tests/fuzz/fuzz_ingest). Parsing with
// kParseNumbersAsStringsFlag through `exact_numbers` hands every number to the handler as
// text, converted here with strtod (correctly rounded by glibc).

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include <locale.h>
#include <rapidjson/document.h>
#include <rapidjson/encodedstream.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>

namespace joule::http {

/// Sends the JSON number `text` (valid JSON number syntax, as RapidJSON's reader passes it to
/// RawNumber) to `next` as the event RapidJSON would: Int64/Uint64 for integers that fit,
/// Double otherwise (±infinity past the double range, for the caller's finiteness checks).
template <class Handler>
bool forward_json_number(Handler& next, std::string_view text) {
  const std::string s(text);
  if (s.find_first_of(".eE") == std::string::npos) {
    char* end = nullptr;
    errno = 0;
    if (s[0] == '-') {
      long long v = std::strtoll(s.c_str(), &end, 10);
      if (errno == 0 && *end == '\0')
        return next.Int64(v);
    } else {
      unsigned long long v = std::strtoull(s.c_str(), &end, 10);
      if (errno == 0 && *end == '\0')
        return next.Uint64(v);
    }
  }
  // strtod reads the decimal point of LC_NUMERIC; JSON's is always '.'.
  static const locale_t c_locale = ::newlocale(LC_ALL_MASK, "C", locale_t{});
  return next.Double(::strtod_l(s.c_str(), nullptr, c_locale));
}

/// A SAX handler that forwards every event to `next` and converts numbers exactly; parse with
/// `exact_numbers_flags` added.
template <class Handler>
struct exact_numbers {
  Handler& next;

  bool Null() { return next.Null(); }
  bool Bool(bool b) { return next.Bool(b); }
  bool Int(int i) { return next.Int(i); }
  bool Uint(unsigned i) { return next.Uint(i); }
  bool Int64(std::int64_t i) { return next.Int64(i); }
  bool Uint64(std::uint64_t i) { return next.Uint64(i); }
  bool Double(double d) { return next.Double(d); }
  bool RawNumber(const char* s, rapidjson::SizeType n, bool) {
    return forward_json_number(next, std::string_view(s, n));
  }
  bool String(const char* s, rapidjson::SizeType n, bool copy) { return next.String(s, n, copy); }
  bool StartObject() { return next.StartObject(); }
  bool Key(const char* s, rapidjson::SizeType n, bool copy) { return next.Key(s, n, copy); }
  bool EndObject(rapidjson::SizeType members) { return next.EndObject(members); }
  bool StartArray() { return next.StartArray(); }
  bool EndArray(rapidjson::SizeType elements) { return next.EndArray(elements); }
};

/// Reader flags for `exact_numbers`: numbers arrive as text.
constexpr unsigned exact_numbers_flags = rapidjson::kParseNumbersAsStringsFlag;

/// `doc.Parse(body)` with exact numbers (strict JSON: NaN and Infinity are errors). On an error
/// `doc` is null and the result names the code and offset.
inline rapidjson::ParseResult parse_exact(std::string_view body, rapidjson::Document& doc) {
  rapidjson::ParseResult result;
  exact_numbers<rapidjson::Document> handler{doc};
  auto generate = [&](rapidjson::Document&) {
    rapidjson::MemoryStream ms(body.data(), body.size());
    rapidjson::EncodedInputStream<rapidjson::UTF8<>, rapidjson::MemoryStream> is(ms);
    rapidjson::Reader reader;
    result = reader.Parse<exact_numbers_flags>(is, handler);
    return !result.IsError();
  };
  doc.SetNull();
  // Populate clears the document's value stack on every exit, also after an error midway.
  doc.Populate(generate);
  if (result.IsError())
    doc.SetNull();
  return result;
}

} // namespace joule::http
