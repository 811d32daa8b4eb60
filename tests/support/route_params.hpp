#pragma once
// What the route table hands an analytics route for a target: the {id} segment (the third,
// /analytics/<kind>/{id}/...) and the decoded query. For tests of the parse_* functions.

#include <string>

#include "http/router.hpp"

namespace joule::test {

inline http::matched analytics_params(const std::string& target) {
  auto t = http::parse_target(target);
  http::matched m;
  if (t.segments.size() > 2)
    m.id = t.segments[2];
  m.query = std::move(t.query);
  m.bad_query = std::move(t.bad_query);
  return m;
}

} // namespace joule::test
