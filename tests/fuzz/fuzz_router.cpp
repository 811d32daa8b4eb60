// Fuzz target: request routing and query-string validation.
// Input: a request line without the version, "METHOD TARGET" (no space: a GET of the whole
// input). Runs the target through url_decode, parse_target, the route table with the server's
// real patterns (and its 404/405 dispatch), the analytics parameter parsers and normalize_uuid,
// and checks what the API promises about their results.

#include <cstddef>
#include <cstdint>
#include <string>
#include <variant>

#include <rapidjson/document.h>

#include "core/timefmt.hpp"
#include "http/router.hpp"
#include "http/routes.hpp"
#include "tests/fuzz/fuzz_check.hpp"
#include "tests/fuzz/route_patterns.hpp"

using namespace joule;
using namespace joule::http;

namespace {

constexpr std::int64_t minute = 60 * micros_per_second;
constexpr std::int64_t hour = 60 * minute;
// [0000-01-01, 10000-01-01): what format_rfc3339 writes with four year digits.
constexpr std::int64_t four_digit_years_begin = -62'167'219'200'000'000;
constexpr std::int64_t four_digit_years_end = 253'402'300'800'000'000;

const limits lim{};

const route_table& table() {
  static const route_table t = [] {
    route_table t;
    for (auto& p : fuzz::route_patterns) {
      route r;
      r.method = p.method;
      r.pattern = p.pattern;
      r.name = p.name;
      r.handler = [](caf::event_based_actor*, route_request&, reply_fn reply) {
        response ok;
        ok.body = "{}";
        reply(std::move(ok));
      };
      t.add(std::move(r));
    }
    return t;
  }();
  return t;
}

bool is_json(const std::string& body) {
  rapidjson::Document d;
  d.Parse(body.c_str(), body.size());
  return !d.HasParseError();
}

void check_error(const api_error& e) {
  FUZZ_CHECK(e.status == 400);
  FUZZ_CHECK(!e.code.empty());
  FUZZ_CHECK(!e.message.empty());
}

bool is_normalized_uuid(const std::string& id) {
  auto again = normalize_uuid(id);
  return again && *again == id;
}

// Timestamps echoed in errors and answers parse back to the same instant.
void check_time_round_trip(const std::string& text) {
  auto t = parse_rfc3339(text);
  if (!t)
    return;
  auto back = parse_rfc3339(format_rfc3339(*t));
  if (*t >= four_digit_years_begin && *t < four_digit_years_end) {
    FUZZ_CHECK(back);
    FUZZ_CHECK(*back == *t);
  }
}

// Bounds are aligned to the step (start down, end up) and hold at most max_points buckets.
void check_series(const series_request& r, const matched& m, std::int64_t default_step) {
  if (auto* e = std::get_if<api_error>(&r))
    return check_error(*e);
  auto& q = std::get<db::series_query>(r);
  FUZZ_CHECK(is_normalized_uuid(q.id));
  FUZZ_CHECK(q.step == minute || q.step == 5 * minute || q.step == hour);
  if (!m.query.count("step"))
    FUZZ_CHECK(q.step == default_step);
  FUZZ_CHECK(q.start < q.end);
  FUZZ_CHECK(q.start % q.step == 0 && q.end % q.step == 0);
  FUZZ_CHECK((q.end - q.start) / q.step <= lim.max_points);
  if (m.query.count("start")) {
    auto s = parse_rfc3339(m.query.at("start"));
    FUZZ_CHECK(s && q.start == floor_to(*s, q.step));
  }
  if (m.query.count("end")) {
    auto e = parse_rfc3339(m.query.at("end"));
    FUZZ_CHECK(e && q.end == ceil_to(*e, q.step));
  }
}

void check_top(const top_request& r) {
  if (auto* e = std::get_if<api_error>(&r))
    return check_error(*e);
  auto& q = std::get<db::top_query>(r);
  FUZZ_CHECK(is_normalized_uuid(q.household_id));
  FUZZ_CHECK(q.limit >= 1 && q.limit <= lim.top_limit_max);
  FUZZ_CHECK(q.end - q.start == 24 * hour && q.end % hour == 0);
}

void check_params(const matched& m) {
  check_series(parse_energy(m, fuzz::fixed_now, lim), m, 5 * minute);
  check_series(parse_power(m, fuzz::fixed_now, lim), m, minute);
  check_top(parse_top(m, fuzz::fixed_now, lim));
  for (auto& [k, v] : m.query)
    check_time_round_trip(v);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string in(reinterpret_cast<const char*>(data), size);
  auto sp = in.find(' ');
  std::string method = sp == std::string::npos ? "GET" : in.substr(0, sp);
  std::string target = sp == std::string::npos ? in : in.substr(sp + 1);

  for (bool plus_is_space : {false, true}) {
    auto d = url_decode(target, plus_is_space);
    if (d)
      FUZZ_CHECK(d->size() <= target.size());
    else
      FUZZ_CHECK(target.find('%') != std::string::npos);
  }

  auto t = parse_target(target);
  for (auto& s : t.segments)
    FUZZ_CHECK(!s.empty() && s.find('/') == std::string::npos);
  if (!t.bad_query.empty())
    FUZZ_CHECK(target.find('?') != std::string::npos);
  for (auto& s : t.segments)
    if (auto u = normalize_uuid(s))
      FUZZ_CHECK(u->size() == 36 && is_normalized_uuid(*u));

  auto m = table().match(method, target);
  if (m.found) {
    FUZZ_CHECK(m.path_known && m.found->method == method);
    check_params(m.params);
  } else {
    // Not routed: the analytics parsers still get the parameters, as if it had been.
    matched p;
    if (t.segments.size() > 2)
      p.id = t.segments[2];
    p.query = t.query;
    p.bad_query = t.bad_query;
    check_params(p);
  }

  // Dispatch answers 404/405 itself (echoing the method in JSON) or calls the handler once.
  int replies = 0;
  response answer;
  request req;
  req.method = method;
  req.target = target;
  dispatch(table(), nullptr, std::move(req), [&](response r) {
    ++replies;
    answer = std::move(r);
  });
  FUZZ_CHECK(replies == 1);
  FUZZ_CHECK(answer.status == (m.found ? 200 : m.path_known ? 405 : 404));
  FUZZ_CHECK(is_json(answer.body));
  return 0;
}
