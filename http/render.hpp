#pragma once
// JSON rendering of API answers (free functions: the domain types never see RapidJSON).

#include <string>
#include <vector>

#include "db/analytics.hpp"

namespace joule::http {

std::string render_energy(const db::series_query& q, const std::string& step,
                          const db::series_result& r);
std::string render_power(const db::series_query& q, const std::string& step,
                         const db::series_result& r);
std::string render_top(const db::top_query& q, const db::top_result& r);
/// `{"error":{"code":..,"message":..}}`, plus `"<list_name>":[..]` when list_name is given.
std::string render_error(const std::string& code, const std::string& message,
                         const std::string& list_name = {},
                         const std::vector<std::string>& list = {});

} // namespace joule::http
