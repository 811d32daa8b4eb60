#include "sim/telemetry_post.hpp"

#include <algorithm>

#include "common/stop_signal.hpp"
#include "sim/telemetry_json.hpp"

namespace joule::bench {

post_outcome post_telemetry(http_client& client, const std::string& body, int max_retries,
                            std::chrono::milliseconds max_wait) {
  post_outcome out;
  for (;;) {
    auto r = client.post_json("/telemetry", body);
    out.status = r.status;
    if (r.status == 202 || r.status == 200) {
      out.accepted = std::max(0LL, parse_accepted(r.body));
      out.error.clear();
      return out;
    }
    out.error = r.status == 0 ? r.error
                              : "HTTP " + std::to_string(r.status) + ": " + r.body.substr(0, 200);
    if ((r.status != 503 && r.status != 429) || out.retries >= max_retries || stop_requested())
      return out;
    ++out.retries;
    auto wait = std::chrono::milliseconds(
        r.retry_after_s >= 0 ? static_cast<int64_t>(r.retry_after_s * 1000) : 1000);
    sleep_unless_stopped(std::min(wait, max_wait));
  }
}

} // namespace joule::bench
