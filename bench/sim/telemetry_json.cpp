#include "sim/telemetry_json.hpp"

#include <rapidjson/document.h>

#include <charconv>

namespace joule::bench {

namespace {

void append_number(std::string& out, double v) {
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed, 4);
  out.append(buf, r.ptr);
}

} // namespace

void append_telemetry_body(std::string& out, const reading* readings, size_t n) {
  out.reserve(out.size() + 16 + n * 180);
  out += "{\"readings\":[";
  char ts[20];
  for (size_t i = 0; i < n; ++i) {
    const auto& r = readings[i];
    if (i)
      out += ',';
    out += "{\"ts\":\"";
    format_rfc3339(r.ts, ts);
    out.append(ts, sizeof ts);
    out += "\",\"device_id\":\"";
    out += r.device_id->to_string();
    out += "\",\"household_id\":\"";
    out += r.household_id->to_string();
    out += "\",\"power_w\":";
    append_number(out, r.power_w);
    out += ",\"energy_wh\":";
    append_number(out, r.energy_wh);
    out += '}';
  }
  out += "]}";
}

long long parse_accepted(const std::string& body) {
  rapidjson::Document doc;
  doc.Parse(body.c_str(), body.size());
  if (doc.HasParseError() || !doc.IsObject())
    return -1;
  auto it = doc.FindMember("accepted");
  if (it == doc.MemberEnd() || !it->value.IsInt64())
    return -1;
  return it->value.GetInt64();
}

} // namespace joule::bench
