#include "sim/live.hpp"

#include <cmath>
#include <cstdio>
#include <memory>
#include <vector>

#include "common/http_client.hpp"
#include "common/stop_signal.hpp"
#include "common/time_format.hpp"
#include "sim/copy_writer.hpp"
#include "sim/load_shape.hpp"
#include "sim/telemetry_json.hpp"
#include "sim/telemetry_post.hpp"

namespace joule::bench {

namespace {

void write_tick_http(http_client& client, const std::vector<reading>& readings, size_t batch,
                     live_result& out) {
  std::string body;
  for (size_t first = 0; first < readings.size(); first += batch) {
    size_t n = std::min(batch, readings.size() - first);
    body.clear();
    append_telemetry_body(body, readings.data() + first, n);
    auto r = post_telemetry(client, body, 5, std::chrono::seconds(5));
    out.readings_sent += n;
    if (r.error.empty()) {
      out.readings_accepted += static_cast<uint64_t>(r.accepted);
    } else {
      ++out.failed_batches;
      out.last_error = r.error;
    }
  }
}

} // namespace

live_result run_live(const fleet& f, const live_options& o) {
  live_result out;
  std::unique_ptr<telemetry_copy_writer> writer;
  std::unique_ptr<http_client> client;
  if (o.target_url.empty())
    writer = std::make_unique<telemetry_copy_writer>(o.conninfo);
  else
    client = std::make_unique<http_client>(http_url::parse(o.target_url), std::chrono::seconds(10));

  const double started = now_seconds();
  const double deadline = o.duration.count() > 0 ? started + static_cast<double>(o.duration.count()) / 1000.0 : 0;
  // The first tick is the next interval boundary still ahead, never one already past.
  unix_seconds tick = ceil_to(static_cast<unix_seconds>(std::ceil(started)), o.interval_s);
  std::vector<reading> readings(f.devices.size());
  while (!stop_requested()) {
    double wait = static_cast<double>(tick) - now_seconds();
    if (deadline > 0 && static_cast<double>(tick) >= deadline)
      break;
    if (wait > 0)
      sleep_unless_stopped(std::chrono::milliseconds(static_cast<int64_t>(wait * 1000)));
    if (stop_requested())
      break;
    for (size_t i = 0; i < f.devices.size(); ++i) {
      const auto& d = f.devices[i];
      const double p = power_w(d, tick);
      readings[i] = {tick, &d.id, &d.household_id, p, energy_wh(p, o.interval_s)};
    }
    if (writer) {
      writer->begin();
      for (const auto& r : readings)
        writer->add(r.ts, *r.device_id, *r.household_id, r.power_w, r.energy_wh);
      out.readings_sent += readings.size();
      out.readings_accepted += writer->commit();
    } else {
      write_tick_http(*client, readings, o.batch, out);
    }
    ++out.ticks;
    tick += o.interval_s;
    if (now_seconds() > static_cast<double>(tick))
      ++out.late_ticks;
    if (o.progress)
      std::fprintf(stderr, "\rlive: %llu ticks, %llu readings accepted, %llu failed batches   ",
                   static_cast<unsigned long long>(out.ticks),
                   static_cast<unsigned long long>(out.readings_accepted),
                   static_cast<unsigned long long>(out.failed_batches));
  }
  if (o.progress)
    std::fputc('\n', stderr);
  out.seconds = now_seconds() - started;
  return out;
}

} // namespace joule::bench
