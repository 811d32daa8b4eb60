#pragma once

#include <cstdint>

namespace joule::bench {

/// SplitMix64 finaliser: a cheap, well-mixed 64-bit hash. Every random choice of the
/// simulator is a hash of (seed, what, index...) instead of a draw from a stateful generator,
/// so any reading can be computed on its own — in any order, on any thread — and the same
/// seed always gives the same fleet and the same readings.
inline uint64_t mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

inline uint64_t hash_of(uint64_t a, uint64_t b) { return mix64(a ^ mix64(b)); }
inline uint64_t hash_of(uint64_t a, uint64_t b, uint64_t c) { return hash_of(hash_of(a, b), c); }
inline uint64_t hash_of(uint64_t a, uint64_t b, uint64_t c, uint64_t d) {
  return hash_of(hash_of(a, b, c), d);
}

/// Uniform in [0, 1) from the top 53 bits of a hash.
inline double unit_interval(uint64_t h) { return static_cast<double>(h >> 11) * 0x1.0p-53; }

} // namespace joule::bench
