#include "http/render.hpp"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "core/timefmt.hpp"

namespace joule::http {
namespace {

using writer = rapidjson::Writer<rapidjson::StringBuffer>;

void key_str(writer& w, const char* k, const std::string& v) {
  w.Key(k);
  w.String(v);
}

void key_time(writer& w, const char* k, std::int64_t t) { key_str(w, k, format_rfc3339(t)); }

void number_or_null(writer& w, const std::optional<double>& v) {
  if (v)
    w.Double(*v);
  else
    w.Null();
}

void series_header(writer& w, const char* id_name, const db::series_query& q,
                   const std::string& step, const db::series_result& r) {
  key_str(w, id_name, q.id);
  key_str(w, "step", step);
  key_time(w, "start", q.start);
  key_time(w, "end", q.end);
  key_time(w, "fresh_as_of", r.meta.fresh_as_of);
}

} // namespace

std::string render_energy(const db::series_query& q, const std::string& step,
                          const db::series_result& r) {
  rapidjson::StringBuffer buf;
  writer w{buf};
  w.StartObject();
  series_header(w, "household_id", q, step, r);
  w.Key("series");
  w.StartArray();
  for (auto& p : r.series) {
    w.StartObject();
    key_time(w, "t", p.t);
    w.Key("v");
    w.Double(p.v.value_or(0.0));  // energy sums over no values are 0 Wh
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return buf.GetString();
}

std::string render_power(const db::series_query& q, const std::string& step,
                         const db::series_result& r) {
  rapidjson::StringBuffer buf;
  writer w{buf};
  w.StartObject();
  series_header(w, "device_id", q, step, r);
  w.Key("series");
  w.StartArray();
  for (auto& p : r.series) {
    w.StartObject();
    key_time(w, "t", p.t);
    w.Key("avg");
    number_or_null(w, p.v);
    w.Key("max");
    number_or_null(w, p.max);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return buf.GetString();
}

std::string render_top(const db::top_query& q, const db::top_result& r) {
  rapidjson::StringBuffer buf;
  writer w{buf};
  w.StartObject();
  key_str(w, "household_id", q.household_id);
  w.Key("window");
  w.StartObject();
  key_time(w, "start", q.start);
  key_time(w, "end", q.end);
  w.EndObject();
  key_time(w, "fresh_as_of", r.meta.fresh_as_of);
  w.Key("devices");
  w.StartArray();
  for (auto& d : r.devices) {
    w.StartObject();
    key_str(w, "device_id", d.device_id);
    w.Key("energy_wh");
    w.Double(d.energy_wh);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return buf.GetString();
}

std::string render_error(const std::string& code, const std::string& message,
                         const std::string& list_name, const std::vector<std::string>& list) {
  rapidjson::StringBuffer buf;
  writer w{buf};
  w.StartObject();
  w.Key("error");
  w.StartObject();
  key_str(w, "code", code);
  key_str(w, "message", message);
  if (!list_name.empty()) {
    w.Key(list_name.c_str(), static_cast<rapidjson::SizeType>(list_name.size()));
    w.StartArray();
    for (auto& v : list)
      w.String(v.c_str(), static_cast<rapidjson::SizeType>(v.size()));
    w.EndArray();
  }
  w.EndObject();
  w.EndObject();
  return buf.GetString();
}

} // namespace joule::http
