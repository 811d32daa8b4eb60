#include "common/stop_signal.hpp"

#include <algorithm>
#include <csignal>
#include <thread>

namespace joule::bench {

namespace {

volatile std::sig_atomic_t stop_flag = 0;

extern "C" void on_stop_signal(int) { stop_flag = 1; }

} // namespace

void install_stop_signal_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

bool stop_requested() { return stop_flag != 0; }

void sleep_unless_stopped(std::chrono::milliseconds d) {
  auto until = std::chrono::steady_clock::now() + d;
  while (!stop_requested()) {
    auto left = until - std::chrono::steady_clock::now();
    if (left <= std::chrono::steady_clock::duration::zero())
      return;
    std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(
        left, std::chrono::milliseconds(50)));
  }
}

} // namespace joule::bench
