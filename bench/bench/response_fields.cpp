#include "bench/response_fields.hpp"

#include <rapidjson/document.h>

namespace joule::bench {

namespace {

bool parse(const std::string& body, rapidjson::Document& doc) {
  doc.Parse(body.c_str(), body.size());
  return !doc.HasParseError() && doc.IsObject();
}

bool has_string(const rapidjson::Value& v, const char* key) {
  auto it = v.FindMember(key);
  return it != v.MemberEnd() && it->value.IsString();
}

bool has_time(const rapidjson::Value& v, const char* key) {
  double t = 0;
  return has_string(v, key) && parse_rfc3339(v[key].GetString(), t);
}

bool has_number(const rapidjson::Value& v, const char* key) {
  auto it = v.FindMember(key);
  return it != v.MemberEnd() && (it->value.IsNumber() || it->value.IsNull());
}

std::string check_series(const rapidjson::Value& doc, std::initializer_list<const char*> fields) {
  auto it = doc.FindMember("series");
  if (it == doc.MemberEnd() || !it->value.IsArray())
    return "missing array 'series'";
  for (const auto& point : it->value.GetArray()) {
    if (!point.IsObject() || !has_time(point, "t"))
      return "series point without RFC 3339 't'";
    for (const char* f : fields)
      if (!has_number(point, f))
        return std::string("series point without number '") + f + "'";
  }
  return {};
}

} // namespace

bool read_fresh_as_of(const std::string& body, double& fresh_as_of) {
  rapidjson::Document doc;
  if (!parse(body, doc) || !has_string(doc, "fresh_as_of"))
    return false;
  return parse_rfc3339(doc["fresh_as_of"].GetString(), fresh_as_of);
}

bool read_power_bucket_max(const std::string& body, unix_seconds bucket, double& max) {
  rapidjson::Document doc;
  if (!parse(body, doc))
    return false;
  auto it = doc.FindMember("series");
  if (it == doc.MemberEnd() || !it->value.IsArray())
    return false;
  for (const auto& point : it->value.GetArray()) {
    double t = 0;
    if (!point.IsObject() || !has_string(point, "t") || !parse_rfc3339(point["t"].GetString(), t))
      continue;
    if (static_cast<unix_seconds>(t) == bucket && point.HasMember("max") && point["max"].IsNumber()) {
      max = point["max"].GetDouble();
      return true;
    }
  }
  return false;
}

std::string check_response_shape(dashboard_endpoint e, const std::string& body) {
  rapidjson::Document doc;
  if (!parse(body, doc))
    return "not a JSON object";
  if (!has_time(doc, "fresh_as_of"))
    return "missing RFC 3339 'fresh_as_of'";
  switch (e) {
    case dashboard_endpoint::energy_5m_24h:
    case dashboard_endpoint::energy_1h_7d:
      if (!has_string(doc, "household_id") || !has_string(doc, "step") ||
          !has_time(doc, "start") || !has_time(doc, "end"))
        return "missing household_id/step/start/end";
      return check_series(doc, {"v"});
    case dashboard_endpoint::power_1m_1h:
      if (!has_string(doc, "device_id") || !has_string(doc, "step") || !has_time(doc, "start") ||
          !has_time(doc, "end"))
        return "missing device_id/step/start/end";
      return check_series(doc, {"avg", "max"});
    case dashboard_endpoint::top_devices: {
      if (!has_string(doc, "household_id"))
        return "missing household_id";
      auto w = doc.FindMember("window");
      if (w == doc.MemberEnd() || !w->value.IsObject() || !has_time(w->value, "start") ||
          !has_time(w->value, "end"))
        return "missing window.start/end";
      auto d = doc.FindMember("devices");
      if (d == doc.MemberEnd() || !d->value.IsArray())
        return "missing array 'devices'";
      for (const auto& dev : d->value.GetArray())
        if (!dev.IsObject() || !has_string(dev, "device_id") || !has_number(dev, "energy_wh"))
          return "device without device_id/energy_wh";
      return {};
    }
  }
  return "unknown endpoint";
}

} // namespace joule::bench
