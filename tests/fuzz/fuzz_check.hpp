#pragma once
// What the fuzz targets share: a property check that fails loudly (libFuzzer saves the input
// that broke it, like any crash) and the fixed clock the parsers are run against.

#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "core/timefmt.hpp"

// A broken property is a finding like a sanitizer report: print it and abort.
#define FUZZ_CHECK(cond)                                                                      \
  do {                                                                                        \
    if (!(cond)) {                                                                            \
      std::fprintf(stderr, "%s:%d: property failed: %s\n", __FILE__, __LINE__, #cond);        \
      std::abort();                                                                           \
    }                                                                                         \
  } while (false)

namespace joule::fuzz {

/// "Now" for every target (2026-11-27T12:34:56.789Z): inputs replay the same way on any day.
constexpr std::int64_t fixed_now = 1'795'782'896'789'000;

} // namespace joule::fuzz
