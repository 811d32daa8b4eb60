#pragma once
// The rollup watermarks this process knows, shared by the refresh actors (which raise them)
// and the read path (which splits queries at them). A known value may lag the database's —
// that only lengthens the raw tail a query reads, it never makes an answer wrong — but it is
// never ahead of it, because it is only ever set from values the database returned.
//
// One slot per entry of config::rollup_defs(), at the rollup's position: the set of rollups
// is fixed for the life of the process, so reads are a name lookup in a short table plus one
// relaxed atomic load — no lock, no allocation.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "config/rollups.hpp"

namespace joule::db {

class watermark_board {
public:
  watermark_board()
    : size_(config::rollup_defs().size()),
      slots_(std::make_unique<std::atomic<std::int64_t>[]>(size_)) {
    for (std::size_t i = 0; i < size_; ++i)
      slots_[i].store(unknown, std::memory_order_relaxed);
  }

  /// Raises the watermark of `rollup` to `value` if that is later than what is known;
  /// an unknown name is ignored.
  void raise(const std::string& rollup, std::int64_t value) {
    raise(config::rollup_index(rollup), value);
  }
  void raise(std::size_t index, std::int64_t value) {
    if (index >= size_)
      return;
    auto& slot = slots_[index];
    auto cur = slot.load(std::memory_order_relaxed);
    while (value > cur && !slot.compare_exchange_weak(cur, value, std::memory_order_relaxed)) {
    }
  }

  /// The known watermark, or nothing if none is known yet or the name is unknown.
  std::optional<std::int64_t> get(const std::string& rollup) const {
    return get(config::rollup_index(rollup));
  }
  std::optional<std::int64_t> get(std::size_t index) const {
    if (index >= size_)
      return std::nullopt;
    auto v = slots_[index].load(std::memory_order_relaxed);
    if (v == unknown)
      return std::nullopt;
    return v;
  }

  /// Number of slots (= rollup_defs().size()).
  std::size_t size() const { return size_; }

private:
  static constexpr std::int64_t unknown = INT64_MIN;
  std::size_t size_;
  std::unique_ptr<std::atomic<std::int64_t>[]> slots_;
};

} // namespace joule::db
