#pragma once
// Writes validated telemetry batches in one transaction with COPY (the group commit).

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/telemetry_row.hpp"

namespace joule::db {

class session;

struct batch_outcome {
  std::uint64_t accepted = 0;    // rows stored
  std::optional<failure> error;  // invalid: unknown_devices / household_mismatch (nothing stored)
};

/// Looks up every device once, rejects batches naming unknown devices (listing them) or
/// a household that is not the device's, fills missing household ids, and COPYs the rest into
/// `telemetry` in one transaction. Throws on database errors (nothing is then written).
/// `allowed[i]`, when given and non-empty, holds the households batch i may write (sorted): a
/// device registered in another household, or not registered at all, rejects the batch as
/// forbidden (no existence oracle for a restricted token).
std::vector<batch_outcome> write_batches(
    session& s, const std::vector<const std::vector<telemetry_row>*>& batches,
    const std::vector<const std::vector<std::string>*>& allowed = {});

} // namespace joule::db
