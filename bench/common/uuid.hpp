#pragma once

#include <array>
#include <cstdint>
#include <string>

namespace joule::bench {

struct uuid {
  std::array<uint8_t, 16> bytes{};

  /// Canonical lower-case 36-character form.
  std::string to_string() const;
  /// Accepts the canonical form only; returns false otherwise.
  static bool parse(const std::string& text, uuid& out);
  /// A version-4-shaped UUID made from two 64-bit hashes (deterministic, not random).
  static uuid from_hashes(uint64_t hi, uint64_t lo);

  friend bool operator==(const uuid& a, const uuid& b) { return a.bytes == b.bytes; }
  friend bool operator!=(const uuid& a, const uuid& b) { return !(a == b); }
};

} // namespace joule::bench
