#include "core/metrics.hpp"

#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace joule::metrics {
namespace {

void atomic_add(std::atomic<double>& a, double d) {
  double cur = a.load(std::memory_order_relaxed);
  while (!a.compare_exchange_weak(cur, cur + d, std::memory_order_relaxed)) {
  }
}

} // namespace

std::string format_value(double v) {
  if (std::isinf(v))
    return v > 0 ? "+Inf" : "-Inf";
  if (std::isnan(v))
    return "NaN";
  // The shortest of %.15g / %.17g that reads back as the same double: a Unix-time gauge
  // (1.796141163e9) keeps its seconds, and 0.1 stays "0.1".
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.15g", v);
  if (std::strtod(buf, nullptr) != v)
    std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

namespace {

std::string num(double v) { return format_value(v); }

// HELP text escaping of the exposition format: backslash and newline.
std::string help_text(const std::string& help) {
  std::string out;
  for (char c : help) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

std::string with_labels(const std::string& labels, const std::string& extra = {}) {
  if (labels.empty() && extra.empty())
    return {};
  if (labels.empty())
    return "{" + extra + "}";
  if (extra.empty())
    return "{" + labels + "}";
  return "{" + labels + "," + extra + "}";
}

} // namespace

void gauge::add(double d) { atomic_add(value_, d); }

histogram::histogram(std::vector<double> upper_bounds)
  : bounds_(std::move(upper_bounds)),
    buckets_(new std::atomic<std::uint64_t>[bounds_.size() + 1]) {
  for (size_t i = 0; i <= bounds_.size(); ++i)
    buckets_[i].store(0);
}

void histogram::observe(double v) {
  size_t i = 0;
  while (i < bounds_.size() && v > bounds_[i])
    ++i;
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  atomic_add(sum_, v);
}

double histogram::quantile(double q) const {
  auto total = count();
  if (total == 0)
    return 0;
  double rank = q * static_cast<double>(total);
  double seen = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    double n = static_cast<double>(buckets_[i].load(std::memory_order_relaxed));
    if (seen + n >= rank && n > 0) {
      double lo = i == 0 ? 0 : bounds_[i - 1];
      double hi = i < bounds_.size() ? bounds_[i] : bounds_.back();
      return lo + (hi - lo) * ((rank - seen) / n);
    }
    seen += n;
  }
  return bounds_.empty() ? 0 : bounds_.back();
}

void histogram::render(std::string& out, const std::string& name,
                       const std::string& labels) const {
  std::uint64_t cumulative = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    cumulative += buckets_[i].load(std::memory_order_relaxed);
    auto le = i < bounds_.size() ? num(bounds_[i]) : std::string("+Inf");
    out += name + "_bucket" + with_labels(labels, "le=\"" + le + "\"") + " " +
           std::to_string(cumulative) + "\n";
  }
  out += name + "_sum" + with_labels(labels) + " " + num(sum_.load()) + "\n";
  out += name + "_count" + with_labels(labels) + " " + std::to_string(count()) + "\n";
}

std::vector<double> latency_buckets() {
  return {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
          0.025,  0.05,    0.1,    0.25,  0.5,    1,     2.5, 5, 10};
}

registry::family& registry::fam(const std::string& name, const std::string& help,
                                const char* type) {
  auto& f = families_[name];
  if (f.type.empty()) {
    f.help = help;
    f.type = type;
  }
  return f;
}

counter& registry::get_counter(const std::string& name, const std::string& help,
                               const std::string& labels) {
  std::lock_guard<std::mutex> guard{mtx_};
  auto& slot = fam(name, help, "counter").counters[labels];
  if (!slot)
    slot = std::make_unique<counter>();
  return *slot;
}

gauge& registry::get_gauge(const std::string& name, const std::string& help,
                           const std::string& labels) {
  std::lock_guard<std::mutex> guard{mtx_};
  auto& slot = fam(name, help, "gauge").gauges[labels];
  if (!slot)
    slot = std::make_unique<gauge>();
  return *slot;
}

histogram& registry::get_histogram(const std::string& name, const std::string& help,
                                   const std::string& labels,
                                   const std::vector<double>& bounds) {
  std::lock_guard<std::mutex> guard{mtx_};
  auto& slot = fam(name, help, "histogram").histograms[labels];
  if (!slot)
    slot = std::make_unique<histogram>(bounds);
  return *slot;
}

std::string registry::render() const {
  std::lock_guard<std::mutex> guard{mtx_};
  std::string out;
  for (auto& [name, f] : families_) {
    out += "# HELP " + name + " " + help_text(f.help) + "\n# TYPE " + name + " " + f.type + "\n";
    for (auto& [labels, c] : f.counters)
      out += name + with_labels(labels) + " " + std::to_string(c->value()) + "\n";
    for (auto& [labels, g] : f.gauges)
      out += name + with_labels(labels) + " " + num(g->value()) + "\n";
    for (auto& [labels, h] : f.histograms)
      h->render(out, name, labels);
  }
  return out;
}

registry& global() {
  static registry instance;
  return instance;
}

std::string label(const std::string& key, const std::string& value) {
  std::string out = key + "=\"";
  for (char c : value) {
    if (c == '\\' || c == '"')
      out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out + "\"";
}

} // namespace joule::metrics
