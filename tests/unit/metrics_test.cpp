#include <gtest/gtest.h>

#include "core/metrics.hpp"

using namespace joule::metrics;

TEST(Metrics, RendersPrometheusTextFormat) {
  registry r;
  r.get_counter("x_total", "things", label("k", "v\"q")).inc(3);
  auto& h = r.get_histogram("lat_seconds", "latency", label("route", "a"), {0.1, 1});
  h.observe(0.05);
  h.observe(0.5);
  h.observe(5);
  auto text = r.render();
  EXPECT_NE(text.find("# TYPE x_total counter"), std::string::npos);
  EXPECT_NE(text.find("x_total{k=\"v\\\"q\"} 3"), std::string::npos) << text;
  EXPECT_NE(text.find("lat_seconds_bucket{route=\"a\",le=\"0.1\"} 1"), std::string::npos) << text;
  EXPECT_NE(text.find("lat_seconds_bucket{route=\"a\",le=\"1\"} 2"), std::string::npos);
  EXPECT_NE(text.find("lat_seconds_bucket{route=\"a\",le=\"+Inf\"} 3"), std::string::npos);
  EXPECT_NE(text.find("lat_seconds_count{route=\"a\"} 3"), std::string::npos);
}
