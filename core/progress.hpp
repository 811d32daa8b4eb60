#pragma once
// Progress of long jobs (`joule refresh`, `joule-sim backfill`) on stderr: rows, rate and ETA.
// On a terminal one line is redrawn in place (`\r`, at most every 0.5 s); otherwise (a log
// file, CI, a pipe) a plain line is written every 10 s, so the output stays readable.
// `JOULE_PROGRESS_INTERVAL=S` changes the plain-line interval (0: a line per update).
// Header-only so the bench tools can use it without linking the server's libraries.

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>

#include <unistd.h>

namespace joule {

/// "12s", "3m 05s", "1h 02m", "?" (unknown).
inline std::string format_eta(double seconds) {
  if (!(seconds >= 0) || seconds > 1e8)
    return "?";
  auto s = static_cast<long long>(seconds + 0.5);
  char buf[48];
  if (s < 60)
    std::snprintf(buf, sizeof buf, "%llds", s);
  else if (s < 3600)
    std::snprintf(buf, sizeof buf, "%lldm %02llds", s / 60, s % 60);
  else
    std::snprintf(buf, sizeof buf, "%lldh %02lldm", s / 3600, s / 60 % 60);
  return buf;
}

/// "LABEL: 45.2% | 1234 / 5000 rows | 250 rows/s | ETA 15s" (no " / total" when total is 0;
/// a fraction of 1 says "done in 20s" instead of the ETA).
inline std::string progress_line(const std::string& label, double fraction, std::uint64_t rows,
                                 std::uint64_t total_rows, double elapsed) {
  fraction = fraction < 0 ? 0 : fraction > 1 ? 1 : fraction;
  const double rate = elapsed > 0 ? static_cast<double>(rows) / elapsed : 0;
  char buf[256];
  std::string tail;
  if (fraction >= 1)
    tail = "done in " + format_eta(elapsed);
  else
    tail = "ETA " + format_eta(fraction > 0 ? elapsed * (1 - fraction) / fraction : -1);
  if (total_rows > 0)
    std::snprintf(buf, sizeof buf, "%s: %.1f%% | %llu / %llu rows | %.0f rows/s | %s",
                  label.c_str(), 100 * fraction, static_cast<unsigned long long>(rows),
                  static_cast<unsigned long long>(total_rows), rate, tail.c_str());
  else
    std::snprintf(buf, sizeof buf, "%s: %.1f%% | %llu rows | %.0f rows/s | %s", label.c_str(),
                  100 * fraction, static_cast<unsigned long long>(rows), rate, tail.c_str());
  return buf;
}

class progress_meter {
public:
  /// `tty`: whether `out` is a terminal (default: isatty of its descriptor).
  explicit progress_meter(std::string label, std::uint64_t total_rows = 0, FILE* out = stderr,
                          std::optional<bool> tty = std::nullopt)
    : label_(std::move(label)), total_(total_rows), out_(out),
      tty_(tty ? *tty : ::isatty(::fileno(out)) == 1) {
    if (!tty_) {
      plain_every_ = std::chrono::seconds(10);
      if (const char* e = std::getenv("JOULE_PROGRESS_INTERVAL"))
        plain_every_ = std::chrono::milliseconds(
            static_cast<long long>(std::strtod(e, nullptr) * 1000));
    }
  }

  bool tty() const { return tty_; }

  /// Reports `fraction` (0..1) of the work done and `rows` written so far; prints when the
  /// interval has passed.
  void update(double fraction, std::uint64_t rows) {
    auto now = clock::now();
    auto every = tty_ ? std::chrono::milliseconds(500) : plain_every_;
    if (printed_once_ && now - last_ < every)
      return;
    print(fraction, rows, false);
    last_ = now;
    printed_once_ = true;
    last_fraction_ = fraction;
    last_rows_ = rows;
  }

  /// The last line (ends the redrawn line on a terminal; not repeated as a plain line when
  /// the last update already said the same).
  void finish(double fraction, std::uint64_t rows) {
    if (!tty_ && printed_once_ && fraction == last_fraction_ && rows == last_rows_)
      return;
    print(fraction, rows, true);
  }

private:
  using clock = std::chrono::steady_clock;

  void print(double fraction, std::uint64_t rows, bool last) {
    double elapsed = std::chrono::duration<double>(clock::now() - started_).count();
    auto line = progress_line(label_, fraction, rows, total_, elapsed);
    if (tty_)
      std::fprintf(out_, "\r%s\x1b[K%s", line.c_str(), last ? "\n" : "");
    else
      std::fprintf(out_, "%s\n", line.c_str());
    std::fflush(out_);
  }

  std::string label_;
  std::uint64_t total_ = 0;
  FILE* out_ = stderr;
  bool tty_ = false;
  std::chrono::milliseconds plain_every_{10000};
  clock::time_point started_ = clock::now();
  clock::time_point last_{};
  bool printed_once_ = false;
  double last_fraction_ = -1;
  std::uint64_t last_rows_ = 0;
};

} // namespace joule
