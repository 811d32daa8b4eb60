#include "http/render.hpp"

#include "http/json_fields.hpp"

namespace joule::http {
namespace {

using namespace json;

void series_header(writer& w, const char* id_name, const db::series_query& q,
                   const std::string& step, const db::series_result& r) {
  field(w, id_name, q.id);
  field(w, "step", step);
  time_field(w, "start", q.start);
  time_field(w, "end", q.end);
  time_field(w, "fresh_as_of", r.meta.fresh_as_of);
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
    time_field(w, "t", p.t);
    field(w, "v", p.v.value_or(0.0));  // energy sums over no values are 0 Wh
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
    time_field(w, "t", p.t);
    field(w, "avg", p.v);
    field(w, "max", p.max);
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
  field(w, "household_id", q.household_id);
  w.Key("window");
  w.StartObject();
  time_field(w, "start", q.start);
  time_field(w, "end", q.end);
  w.EndObject();
  time_field(w, "fresh_as_of", r.meta.fresh_as_of);
  w.Key("devices");
  w.StartArray();
  for (auto& d : r.devices) {
    w.StartObject();
    field(w, "device_id", d.device_id);
    field(w, "energy_wh", d.energy_wh);
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
  field(w, "code", code);
  field(w, "message", message);
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
