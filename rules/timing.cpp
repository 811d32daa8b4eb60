#include "rules/timing.hpp"

#include "core/timefmt.hpp"

namespace joule::rules {

std::optional<std::int64_t> repeat_due_at(const eval_state& s, std::int64_t repeat_interval_sec) {
  if (s.current != phase::firing || repeat_interval_sec <= 0)
    return std::nullopt;
  return s.last_notified_at + repeat_interval_sec * micros_per_second;
}

std::int64_t group_flush_at(const group_times& g, std::int64_t now, std::int64_t wait_us,
                            std::int64_t interval_us) {
  if (g.flush_at)
    return *g.flush_at;
  if (g.last_flush_at && *g.last_flush_at + interval_us > now)
    return *g.last_flush_at + interval_us;
  return now + wait_us;
}

} // namespace joule::rules
