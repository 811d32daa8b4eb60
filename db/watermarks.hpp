#pragma once
// The rollup watermarks this process knows, shared by the refresh actors (which raise them)
// and the read path (which splits queries at them). A known value may lag the database's —
// that only lengthens the raw tail a query reads, it never makes an answer wrong — but it is
// never ahead of it, because it is only ever set from values the database returned.

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>

namespace joule::db {

class watermark_board {
public:
  /// Raises the watermark of `rollup` to `value` if that is later than what is known.
  void raise(const std::string& rollup, std::int64_t value) {
    auto* slot = find(rollup);
    if (!slot)
      return;
    auto cur = slot->load(std::memory_order_relaxed);
    while (value > cur && !slot->compare_exchange_weak(cur, value, std::memory_order_relaxed)) {
    }
  }
  std::optional<std::int64_t> get(const std::string& rollup) const {
    auto* slot = const_cast<watermark_board*>(this)->find(rollup);
    if (!slot)
      return std::nullopt;
    auto v = slot->load(std::memory_order_relaxed);
    if (v == unknown)
      return std::nullopt;
    return v;
  }

private:
  static constexpr std::int64_t unknown = INT64_MIN;
  std::atomic<std::int64_t>* find(const std::string& rollup) {
    if (rollup == "device_1m")
      return &device_1m_;
    if (rollup == "household_5m")
      return &household_5m_;
    if (rollup == "device_1h")
      return &device_1h_;
    return nullptr;
  }
  std::atomic<std::int64_t> device_1m_{unknown}, household_5m_{unknown}, device_1h_{unknown};
};

} // namespace joule::db
