#include "sim/backfill.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include "common/stop_signal.hpp"
#include "sim/copy_writer.hpp"
#include "sim/load_shape.hpp"

namespace joule::bench {

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

void print_progress(uint64_t done, uint64_t total, double elapsed) {
  double rate = elapsed > 0 ? static_cast<double>(done) / elapsed : 0;
  double eta = rate > 0 ? static_cast<double>(total - done) / rate : 0;
  std::fprintf(stderr, "\rbackfill: %llu / %llu rows (%.0f%%), %.0f rows/s, ETA %.0f s   ",
               static_cast<unsigned long long>(done), static_cast<unsigned long long>(total),
               total ? 100.0 * static_cast<double>(done) / static_cast<double>(total) : 100.0,
               rate, eta);
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
  int polls = 0;
  while (state.running > 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    if (o.progress && ++polls % 5 == 0)
      print_progress(state.rows_sent, total, elapsed());
  }
  for (auto& t : threads)
    t.join();
  if (o.progress) {
    print_progress(state.rows_committed, total, elapsed());
    std::fputc('\n', stderr);
  }
  if (state.error)
    std::rethrow_exception(state.error);
  return {state.rows_committed.load(), elapsed()};
}

} // namespace joule::bench
