#include "http/ingest_parse.hpp"

#include <cmath>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "core/timefmt.hpp"
#include "http/json_numbers.hpp"
#include "http/router.hpp"

namespace joule::http {

ingest_limits ingest_limits_of(const config::settings& s, std::int64_t now) {
  ingest_limits l;
  l.now = now;
  l.max_future_skew_us = s.ingest_max_future_skew.count() * 1000;
  l.max_age_us = s.ingest_max_age.count() * 1000;
  l.json_max_depth = s.http_json_max_depth;
  return l;
}

ingest_parse_result parse_readings(const std::string& body, const ingest_limits& limits) {
  ingest_parse_result out;
  auto fail = [&](int index, const std::string& field, const std::string& reason) {
    if (out.errors.size() < limits.max_errors)
      out.errors.push_back({index, field, reason});
  };
  rapidjson::Document doc;
  if (auto err = parse_json(body, doc, limits.json_max_depth)) {
    if (err->kind == json_error::kind_t::too_deep)
      out.code = "invalid_json";
    fail(-1, "", err->message);
    return out;
  }
  const std::int64_t now = limits.now;
  if (!doc.IsObject() || !doc.HasMember("readings") || !doc["readings"].IsArray()) {
    fail(-1, "readings", "the body must be an object with a \"readings\" array");
    return out;
  }
  const auto& arr = doc["readings"];
  if (arr.Empty()) {
    fail(-1, "readings", "the batch is empty");
    return out;
  }
  out.readings.reserve(arr.Size());
  for (rapidjson::SizeType i = 0; i < arr.Size(); ++i) {
    const int idx = static_cast<int>(i);
    const auto& r = arr[i];
    if (!r.IsObject()) {
      fail(idx, "", "each reading must be an object");
      continue;
    }
    reading rd;
    bool ok = true;
    auto str = [&](const char* field, bool required) -> std::optional<std::string> {
      if (!r.HasMember(field) || r[field].IsNull()) {
        if (required) {
          fail(idx, field, "missing");
          ok = false;
        }
        return std::nullopt;
      }
      if (!r[field].IsString()) {
        fail(idx, field, "must be a string");
        ok = false;
        return std::nullopt;
      }
      return std::string(r[field].GetString(), r[field].GetStringLength());
    };
    auto num = [&](const char* field) -> double {
      if (!r.HasMember(field)) {
        fail(idx, field, "missing");
        ok = false;
        return 0;
      }
      if (!r[field].IsNumber()) {
        fail(idx, field, "must be a number");
        ok = false;
        return 0;
      }
      double v = r[field].GetDouble();
      if (!std::isfinite(v)) {
        fail(idx, field, "must be finite");
        ok = false;
      }
      return v;
    };
    if (auto ts = str("ts", true)) {
      if (auto t = parse_rfc3339(*ts)) {
        rd.ts = *t;
        if (rd.ts > now + limits.max_future_skew_us) {
          fail(idx, "ts", "is more than " + std::to_string(limits.max_future_skew_us / 1000000) +
                              " s in the future");
          ok = false;
        } else if (rd.ts < now - limits.max_age_us) {
          fail(idx, "ts", "is more than " +
                              config::format_duration(config::millis(limits.max_age_us / 1000)) +
                              " old (ingest.max_age)");
          ok = false;
        }
      } else {
        fail(idx, "ts", "'" + *ts + "' is not an RFC 3339 timestamp");
        ok = false;
      }
    }
    if (auto d = str("device_id", true)) {
      if (auto u = normalize_uuid(*d))
        rd.device_id = *u;
      else {
        fail(idx, "device_id", "'" + *d + "' is not a UUID");
        ok = false;
      }
    }
    if (auto h = str("household_id", false)) {
      if (auto u = normalize_uuid(*h))
        rd.household_id = *u;
      else {
        fail(idx, "household_id", "'" + *h + "' is not a UUID");
        ok = false;
      }
    }
    rd.power_w = num("power_w");
    rd.energy_wh = num("energy_wh");
    if (std::isfinite(rd.energy_wh) && rd.energy_wh < 0) {
      fail(idx, "energy_wh", "must not be negative");
      ok = false;
    }
    if (ok)
      out.readings.push_back(std::move(rd));
  }
  if (!out.errors.empty())
    out.readings.clear();
  return out;
}

std::string render_reading_errors(const ingest_parse_result& r) {
  const auto& errors = r.errors;
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w{buf};
  w.StartObject();
  w.Key("error");
  w.StartObject();
  w.Key("code");
  w.String(r.code);
  w.Key("message");
  std::string msg = "the batch was rejected whole; first problem: ";
  if (!errors.empty()) {
    auto& e = errors.front();
    msg += (e.index >= 0 ? "readings[" + std::to_string(e.index) + "]" : std::string("body")) +
           (e.field.empty() ? "" : "." + e.field) + " " + e.reason;
  }
  w.String(msg);
  w.Key("details");
  w.StartArray();
  for (auto& e : errors) {
    w.StartObject();
    w.Key("index");
    if (e.index >= 0)
      w.Int(e.index);
    else
      w.Null();
    w.Key("field");
    w.String(e.field);
    w.Key("reason");
    w.String(e.reason);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  w.EndObject();
  return buf.GetString();
}

} // namespace joule::http
