#pragma once
// Writes validated telemetry batches in one transaction with COPY (the group commit).

#include <string>
#include <vector>

#include "core/telemetry_row.hpp"

namespace joule::db {

class session;

struct batch_outcome {
  int status = 202;      // 202 stored, 422 unknown devices / household mismatch
  std::string body;      // response body
};

/// Looks up every device once, rejects batches naming unknown devices (422, listing them) or
/// a household that is not the device's, fills missing household ids, and COPYs the rest into
/// `telemetry` in one transaction. Throws on database errors (nothing is then written).
std::vector<batch_outcome> write_batches(session& s,
                                         const std::vector<const std::vector<telemetry_row>*>& batches);

} // namespace joule::db
