#pragma once

#include <chrono>

namespace joule::bench {

/// SIGINT/SIGTERM set a flag instead of killing the process, so long runs can stop at a
/// batch boundary, commit what they have and print their totals.
void install_stop_signal_handlers();
bool stop_requested();

/// Sleeps up to `d`, waking early (in ≤ 50 ms) when a stop is requested.
void sleep_unless_stopped(std::chrono::milliseconds d);

} // namespace joule::bench
