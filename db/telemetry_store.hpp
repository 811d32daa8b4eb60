#pragma once
// Writes validated telemetry batches in one transaction with COPY (the group commit).

#include <chrono>
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

/// One batch of a group commit, with its idempotency key (empty key = none).
struct batch_ref {
  const std::vector<telemetry_row>* rows = nullptr;
  std::string owner;
  std::string idempotency_key;
  std::string body_sha256;  // raw 32 bytes
  /// The households this batch may write (sorted; null or empty: any). A device registered in
  /// another household, or not registered at all, rejects the batch as forbidden (no existence
  /// oracle for a restricted token); nothing of it is written and its key is not claimed.
  const std::vector<std::string>* households = nullptr;
};

struct write_options {
  /// Keys older than this are forgotten (ingest.idempotency_ttl), in µs.
  std::int64_t idempotency_ttl_us = 86400LL * 1000000;
  /// The transaction is aborted (nothing written) if it runs longer (0: no limit).
  std::chrono::milliseconds deadline{0};
};

/// Looks up every device once, rejects batches naming unknown devices (listing them) or
/// a household that is not the device's, fills missing household ids, and COPYs the rest into
/// `telemetry` in one transaction. Throws on database errors (nothing is then written).
/// A batch whose key was already used answers that first result (same body) or fails
/// unprocessable `idempotency_key_reused` (different body), writing nothing either way.
std::vector<batch_outcome> write_batches(session& s, const std::vector<batch_ref>& batches,
                                         const write_options& opt);

/// Forgets idempotency keys older than `ttl_us`; returns how many.
std::int64_t expire_idempotency_keys(session& s, std::int64_t ttl_us);

} // namespace joule::db
