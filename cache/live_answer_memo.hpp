#pragma once
// Whole live answers (household energy, device power, top devices) per live snapshot. A live
// answer is a pure function of its query and the snapshot it was computed from (its settled
// part is versioned by that snapshot, its fresh_as_of is the snapshot's), so clients polling
// the same subjects between two snapshots can share one computation: without this, every
// poll re-joins the settled part with the snapshot (decoding device parts from text), 1.5-1.9x
// the CPU per answer of the whole answers the near cache served before live reads.
//
// The key names the snapshot, so a new snapshot never finds an older one's answers, and the
// ttl (about two live intervals) only frees memory. Callers look up and store only once they
// have decided to answer from the snapshot (after every authorization, unknown-subject and
// late-write check): the memo never decides who may read what.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "cache/near_cache.hpp"

namespace joule::cache {

class live_answer_memo {
public:
  using time_point = near_cache::time_point;

  /// `max_bytes` bounds keys plus bodies (see near_cache); `ttl` should cover a snapshot's
  /// lifetime (it is replaced every live.interval).
  live_answer_memo(std::chrono::milliseconds ttl, std::size_t max_bytes);

  /// The key of `route`'s answer to `query` (every parameter the body depends on, normalized)
  /// on the snapshot `snapshot_seq` read at `snapshot_db_now`. Both name the snapshot: seq
  /// restarts with a restarted tail, db_now (the database's clock) does not repeat with it.
  static std::string key(const char* route, std::uint64_t snapshot_seq,
                         std::int64_t snapshot_db_now, const std::string& query);

  /// The stored body; counts joule_live_answer_memo_hits_total.
  std::optional<std::string> find(const std::string& key, time_point now);
  /// Keeps a 200 answer's body (never an error: those are not a function of the snapshot).
  void put(const std::string& key, const std::string& body, time_point now);

  std::size_t size() const { return store_.size(); }

private:
  near_cache store_;
};

} // namespace joule::cache
