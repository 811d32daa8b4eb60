#pragma once
// Keys of settled answer parts (issue 9): `s:<rollup>:<id>:<step>:<lo>:<hi>:<version hash>`,
// where the version is that of the rollup rows the part was computed from (rollup_versions,
// migration 0009). A changed row changes the key, so an entry can never be served after its
// rows changed; eviction by announced change only frees memory early.

#include <cstddef>
#include <cstdint>
#include <string>

#include "cache/near_cache.hpp"

namespace joule::cache {

std::string settled_key(const std::string& rollup, const std::string& id, std::int64_t step,
                        std::int64_t lo, std::int64_t hi, const std::string& versions);

/// True when `key` is a settled part of `rollup` whose range overlaps [lo, hi) (a malformed
/// settled key of the rollup counts as overlapping).
bool settled_key_overlaps(const std::string& key, const std::string& rollup, std::int64_t lo,
                          std::int64_t hi);

/// Drops the settled parts of `rollup` overlapping [lo, hi); returns how many.
std::size_t evict_settled(near_cache& store, const std::string& rollup, std::int64_t lo,
                          std::int64_t hi);

} // namespace joule::cache
