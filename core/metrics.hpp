#pragma once
// Prometheus-style metrics: counters, gauges and histograms registered by name, help text
// and labels, updated lock-free on hot paths, rendered in the text exposition format.

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace joule::metrics {

class counter {
public:
  void inc(std::uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  std::uint64_t value() const { return value_.load(std::memory_order_relaxed); }

private:
  std::atomic<std::uint64_t> value_{0};
};

class gauge {
public:
  void set(double v) { value_.store(v, std::memory_order_relaxed); }
  void add(double d);
  double value() const { return value_.load(std::memory_order_relaxed); }

private:
  std::atomic<double> value_{0};
};

class histogram {
public:
  explicit histogram(std::vector<double> upper_bounds);
  void observe(double v);
  std::uint64_t count() const { return count_.load(std::memory_order_relaxed); }
  /// Estimated quantile (linear within the bucket), for /admin/status and tests.
  double quantile(double q) const;
  void render(std::string& out, const std::string& name, const std::string& labels) const;

private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> buckets_;
  std::atomic<std::uint64_t> count_{0};
  std::atomic<double> sum_{0};
};

/// Latency buckets in seconds, 100 µs to 10 s.
std::vector<double> latency_buckets();

class registry {
public:
  /// Returns the series for (name, labels), creating it on first use. References stay valid
  /// for the registry's lifetime, so callers may keep them.
  counter& get_counter(const std::string& name, const std::string& help,
                       const std::string& labels = {});
  gauge& get_gauge(const std::string& name, const std::string& help,
                   const std::string& labels = {});
  histogram& get_histogram(const std::string& name, const std::string& help,
                           const std::string& labels = {},
                           const std::vector<double>& bounds = latency_buckets());
  std::string render() const;

private:
  struct family {
    std::string help;
    std::string type;
    std::map<std::string, std::unique_ptr<counter>> counters;
    std::map<std::string, std::unique_ptr<gauge>> gauges;
    std::map<std::string, std::unique_ptr<histogram>> histograms;
  };
  family& fam(const std::string& name, const std::string& help, const char* type);
  mutable std::mutex mtx_;
  std::map<std::string, family> families_;
};

/// The process-wide registry behind GET /metrics.
registry& global();

/// A sample value as the exposition format writes it: +Inf/-Inf/NaN, otherwise the shortest
/// of %.15g/%.17g that reads back exactly.
std::string format_value(double v);

/// `key="value"` with Prometheus escaping; join several with ','.
std::string label(const std::string& key, const std::string& value);

} // namespace joule::metrics
