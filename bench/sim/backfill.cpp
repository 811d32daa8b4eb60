#include "sim/backfill.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <exception>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>
#include <vector>

#include "common/stop_signal.hpp"
#include "core/progress.hpp"
#include "sim/copy_writer.hpp"
#include "sim/load_shape.hpp"

namespace joule::bench {

using joule::progress_meter;

namespace {

struct shared_state {
  std::atomic<uint64_t> rows_sent{0};
  std::atomic<uint64_t> rows_committed{0};
  std::atomic<bool> failed{false};
  std::atomic<int> running{0};
  std::mutex error_mutex;
  std::exception_ptr error;
};

void write_slice(const fleet& f, const backfill_options& o, int64_t first_tick,
                 int64_t end_tick, shared_state& state) {
  try {
    telemetry_copy_writer writer(o.conninfo);
    uint64_t in_transaction = 0;
    for (int64_t k = first_tick; k < end_tick; ++k) {
      if (state.failed || stop_requested())
        break;
      if (in_transaction == 0)
        writer.begin();
      const unix_seconds ts = o.start + k * o.interval_s;
      for (const auto& d : f.devices) {
        const double p = power_w(d, ts);
        writer.add(ts, d.id, d.household_id, p, energy_wh(p, o.interval_s));
      }
      in_transaction += f.devices.size();
      state.rows_sent += f.devices.size();
      if (in_transaction >= o.rows_per_transaction || k + 1 == end_tick) {
        state.rows_committed += writer.commit();
        in_transaction = 0;
      }
    }
    if (in_transaction > 0) // stopped by a signal: keep what was generated
      state.rows_committed += writer.commit();
  } catch (...) {
    std::lock_guard<std::mutex> lock(state.error_mutex);
    if (!state.error)
      state.error = std::current_exception();
    state.failed = true;
  }
  --state.running;
}

} // namespace

backfill_result run_backfill(const fleet& f, const backfill_options& o) {
  if (o.interval_s <= 0 || o.end < o.start || o.workers < 1)
    throw std::invalid_argument("backfill needs interval > 0, end >= start, workers >= 1");
  const int64_t ticks = (o.end - o.start + o.interval_s - 1) / o.interval_s;
  const uint64_t total = static_cast<uint64_t>(ticks) * f.devices.size();
  const auto started = std::chrono::steady_clock::now();
  shared_state state;
  std::vector<std::thread> threads;
  const int workers = static_cast<int>(std::min<int64_t>(o.workers, std::max<int64_t>(ticks, 1)));
  state.running = workers;
  for (int w = 0; w < workers; ++w) {
    int64_t first = ticks * w / workers, last = ticks * (w + 1) / workers;
    threads.emplace_back(write_slice, std::cref(f), std::cref(o), first, last, std::ref(state));
  }
  auto elapsed = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  };
  // Bounded: the workers end when their slices are written, on failure, or on a signal.
  // Progress: redrawn on a terminal, a plain line every 10 s otherwise (core/progress.hpp).
  std::optional<progress_meter> meter;
  if (o.progress)
    meter.emplace("backfill", total);
  auto fraction = [total](uint64_t rows) {
    return total ? static_cast<double>(rows) / static_cast<double>(total) : 1.0;
  };
  while (state.running > 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    if (meter)
      meter->update(fraction(state.rows_sent), state.rows_sent);
  }
  for (auto& t : threads)
    t.join();
  if (meter)
    meter->finish(fraction(state.rows_committed), state.rows_committed);
  if (state.error)
    std::rethrow_exception(state.error);
  return {state.rows_committed.load(), elapsed()};
}

} // namespace joule::bench
