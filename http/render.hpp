#pragma once
// JSON rendering of API answers (free functions: the domain types never see RapidJSON).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cache/settled_series.hpp"
#include "db/analytics.hpp"

namespace joule::http {

std::string render_energy(const db::series_query& q, const std::string& step,
                          const db::series_result& r);
/// Appends the series elements of an energy answer over `points` (ascending, after every
/// element `part` holds) to `part`, exactly as render_energy writes them.
void append_energy_elements(cache::series_part& part,
                            const std::vector<std::pair<std::int64_t, std::optional<double>>>& points);
/// The inverse for text append_energy_elements wrote (a settled part shared through Redis):
/// fills `part`'s text and elements; false when the text is not such elements.
bool parse_energy_elements(std::string_view text, cache::series_part& part);
std::string render_power(const db::series_query& q, const std::string& step,
                         const db::series_result& r);
std::string render_top(const db::top_query& q, const db::top_result& r);
/// `{"error":{"code":..,"message":..}}`, plus `"<list_name>":[..]` when list_name is given.
std::string render_error(const std::string& code, const std::string& message,
                         const std::string& list_name = {},
                         const std::vector<std::string>& list = {});

} // namespace joule::http
