#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <vector>

#include "core/metrics.hpp"
#include "core/process_metrics.hpp"

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

TEST(Metrics, ValuesKeepTheirPrecision) {
  // A Unix-time gauge must keep its seconds (%.9g turned 1796141163 into 1.79614116e+09).
  EXPECT_EQ(format_value(1796141163), "1796141163");
  EXPECT_EQ(format_value(1796141163.25), "1796141163.25");
  EXPECT_EQ(format_value(0.1), "0.1");
  EXPECT_EQ(format_value(0.0001), "0.0001");
  EXPECT_EQ(std::strtod(format_value(1.0 / 3).c_str(), nullptr), 1.0 / 3);
  EXPECT_EQ(format_value(1.0 / 0.0), "+Inf");
  EXPECT_EQ(format_value(-1.0 / 0.0), "-Inf");
  EXPECT_EQ(format_value(std::nan("")), "NaN");
}

TEST(Metrics, HelpTextIsEscaped) {
  registry r;
  r.get_gauge("g", "a\\b\nc").set(1);
  EXPECT_NE(r.render().find("# HELP g a\\\\b\\nc\n"), std::string::npos) << r.render();
}

TEST(ProcessMetrics, ReadFromProc) {
  auto before = sample_process();
  ASSERT_TRUE(before.cpu_seconds && before.resident_bytes && before.start_time_seconds &&
              before.open_fds && before.max_fds && before.threads);
  // Resident memory is at least the megabyte this test touches, and the process started
  // within the last hour, not in 1970 (ticks and boot time combined correctly).
  std::vector<char> touched(8 << 20, 1);
  auto s = sample_process();
  EXPECT_GE(*s.resident_bytes, 8.0 * (1 << 20));
  EXPECT_LT(std::abs(*s.start_time_seconds - static_cast<double>(std::time(nullptr))), 3600);
  EXPECT_GE(*s.cpu_seconds, *before.cpu_seconds);
  // One more open descriptor is seen as one more.
  FILE* f = std::fopen("/proc/self/stat", "r");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(*sample_process().open_fds, *before.open_fds + 1);
  std::fclose(f);
  EXPECT_EQ(*sample_process().open_fds, *before.open_fds);
  EXPECT_GE(*s.threads, 1);
  EXPECT_GT(touched[touched.size() - 1], 0);
}

TEST(ProcessMetrics, RenderedWithBuildInfo) {
  std::string out;
  render_process(out);
  for (auto* name : {"process_cpu_seconds_total", "process_resident_memory_bytes",
                     "process_start_time_seconds", "process_open_fds", "process_max_fds",
                     "process_virtual_memory_bytes"})
    EXPECT_NE(out.find(std::string("\n") + name + " "), std::string::npos) << name << "\n" << out;
  EXPECT_NE(out.find("# TYPE process_cpu_seconds_total counter\n"), std::string::npos);
  EXPECT_NE(out.find(std::string("joule_build_info{version=\"") + build_version() +
                     "\",revision=\"" + build_revision() + "\"} 1\n"),
            std::string::npos)
      << out;
  EXPECT_STRNE(build_version(), "");
}
