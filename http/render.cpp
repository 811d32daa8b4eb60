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

// One element of an energy series; settled parts (append_energy_elements) are spliced into
// answers, so both must write it identically.
void energy_element(writer& w, std::int64_t t, const std::optional<double>& v) {
  w.StartObject();
  time_field(w, "t", t);
  field(w, "v", v.value_or(0.0));  // energy sums over no values are 0 Wh
  w.EndObject();
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
  for (auto& p : r.series)
    energy_element(w, p.t, p.v);
  w.EndArray();
  w.EndObject();
  return buf.GetString();
}

void append_energy_elements(cache::series_part& part,
                            const std::vector<std::pair<std::int64_t, std::optional<double>>>& points) {
  rapidjson::StringBuffer buf;
  writer w{buf};
  for (auto& [t, v] : points) {
    buf.Clear();
    w.Reset(buf);
    energy_element(w, t, v);  // as one array element of render_energy
    part.append(t, std::string_view(buf.GetString(), buf.GetSize()));
  }
}

bool parse_energy_elements(std::string_view text, cache::series_part& part) {
  static constexpr std::string_view open = "{\"t\":\"";
  part.text.assign(text.data(), text.size());
  part.elements.clear();
  std::size_t at = 0;
  while (at < text.size()) {
    if (text.compare(at, open.size(), open) != 0)
      return false;
    const auto t_end = text.find('"', at + open.size());
    const auto close = t_end == std::string_view::npos ? t_end : text.find('}', t_end);
    if (close == std::string_view::npos)
      return false;
    auto t = parse_rfc3339(std::string(text.substr(at + open.size(), t_end - at - open.size())));
    if (!t || (!part.elements.empty() && *t <= part.elements.back().first))
      return false;
    part.elements.emplace_back(*t, at);
    at = close + 1;
    if (at < text.size() && text[at++] != ',')
      return false;
  }
  return true;
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
