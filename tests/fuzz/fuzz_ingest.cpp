// Fuzz target: the POST /telemetry body parser (http::parse_readings) and the 400 body it
// renders. Input: the request body.

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>

#include <rapidjson/document.h>

#include "http/ingest_parse.hpp"
#include "http/router.hpp"
#include "tests/fuzz/fuzz_check.hpp"

using namespace joule;

namespace {

constexpr std::int64_t skew = 300 * micros_per_second;
constexpr std::size_t max_errors = 20;

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string body(reinterpret_cast<const char*>(data), size);
  http::ingest_limits limits;
  limits.now = fuzz::fixed_now;
  limits.max_future_skew_us = skew;
  limits.max_errors = max_errors;
  auto r = http::parse_readings(body, limits);

  // All or nothing: a batch with any error is rejected whole.
  FUZZ_CHECK(r.errors.empty() != r.readings.empty());
  FUZZ_CHECK(r.errors.size() <= max_errors);
  for (auto& rd : r.readings) {
    auto d = http::normalize_uuid(rd.device_id);
    FUZZ_CHECK(d && *d == rd.device_id);
    if (!rd.household_id.empty()) {
      auto h = http::normalize_uuid(rd.household_id);
      FUZZ_CHECK(h && *h == rd.household_id);
    }
    FUZZ_CHECK(rd.ts <= fuzz::fixed_now + skew);
    FUZZ_CHECK(rd.ts >= fuzz::fixed_now - limits.max_age_us);
    FUZZ_CHECK(std::isfinite(rd.power_w) && std::isfinite(rd.energy_wh) && rd.energy_wh >= 0);
  }
  for (auto& e : r.errors)
    FUZZ_CHECK(e.index >= -1 && !e.reason.empty());

  if (!r.errors.empty()) {
    // The 400 body is JSON with the documented shape, whatever bytes the input echoed into it.
    auto out = http::render_reading_errors(r);
    rapidjson::Document doc;
    doc.Parse(out.c_str(), out.size());
    FUZZ_CHECK(!doc.HasParseError() && doc.IsObject());
    FUZZ_CHECK(doc.HasMember("error") && doc["error"].IsObject());
    auto& err = doc["error"];
    FUZZ_CHECK(err.HasMember("details") && err["details"].IsArray());
    FUZZ_CHECK(err["details"].Size() == r.errors.size());
  }
  return 0;
}
