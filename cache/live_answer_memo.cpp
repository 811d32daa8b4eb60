#include "cache/live_answer_memo.hpp"

#include "core/metrics.hpp"

namespace joule::cache {
namespace {

metrics::counter& hits() {
  static metrics::counter& c = metrics::global().get_counter(
      "joule_live_answer_memo_hits_total",
      "Live answers served whole from the per-snapshot memo (no join of settled and live parts)");
  return c;
}

// Entries are few (subjects polled within one snapshot) and bodies tens of kB: the byte bound
// is the one that matters, the entry bound only caps the maps.
constexpr std::size_t max_entries = std::size_t{1} << 20;

} // namespace

live_answer_memo::live_answer_memo(std::chrono::milliseconds ttl, std::size_t max_bytes)
    : store_(ttl, max_entries, false, max_bytes) {
  hits();  // exposed as 0 from the start
}

std::string live_answer_memo::key(const char* route, std::uint64_t snapshot_seq,
                                  std::int64_t snapshot_db_now, const std::string& query) {
  std::string k = route;
  k += '|';
  k += std::to_string(snapshot_seq);
  k += '@';
  k += std::to_string(snapshot_db_now);
  k += '|';
  k += query;
  return k;
}

std::optional<std::string> live_answer_memo::find(const std::string& key, time_point now) {
  auto body = store_.find(key, now);
  if (body)
    hits().inc();
  return body;
}

void live_answer_memo::put(const std::string& key, const std::string& body, time_point now) {
  store_.put(key, body, now);
}

} // namespace joule::cache
