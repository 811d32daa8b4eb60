#pragma once
// The api_tokens table: creating, listing, revoking and verifying tokens (plain C++ over one
// session). Only the SHA-256 of a secret ever reaches the database; hashes travel as hex text
// parameters (`decode($1, 'hex')`).

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/auth.hpp"

namespace joule::db {

class session;

/// One token as stored (never the secret; never the hash either, except in verification).
struct token_record {
  std::string id;
  std::string name;
  auth::scope_set scopes = 0;
  std::vector<std::string> households;  // sorted; empty = every household
  std::int64_t created_at = 0;          // µs since the epoch
  std::optional<std::int64_t> expires_at, revoked_at, last_used_at;
};

/// What `joule token create` and POST /admin/tokens ask for.
struct token_spec {
  auth::scope_set scopes = 0;
  std::vector<std::string> households;          // normalised UUIDs (any order, duplicates ok)
  std::optional<std::int64_t> expires_in_us;    // nullopt: never expires
  std::string name;
};

struct created_token {
  token_record record;
  std::string secret;  // returned once, to the creator
};

/// Generates a secret (CSPRNG), stores its hash and the token's attributes.
created_token create_token(session& s, const token_spec& spec);

/// Every token, oldest first. With `within` non-empty only household-restricted tokens whose
/// households all lie inside `within` (what a restricted admin may manage).
std::vector<token_record> list_tokens(session& s, const std::vector<std::string>& within = {});

enum class revoke_outcome { revoked, already_revoked, unknown };
/// Sets revoked_at (idempotent); `within` as for list_tokens (others are "unknown").
revoke_outcome revoke_token(session& s, const std::string& id,
                            const std::vector<std::string>& within = {});

/// The token with this SHA-256 (32 raw bytes) if it is neither revoked nor expired; the stored
/// hash is compared with CRYPTO_memcmp after the index lookup.
std::optional<token_record> find_valid_token(session& s, const std::string& hash);

/// Of `hashes`, those still valid, with their records (one round trip).
std::vector<std::pair<std::string, token_record>> still_valid(session& s,
                                                              const std::vector<std::string>& hashes);

/// Stores coarse last-use times (token id, µs) in one statement.
void record_token_use(session& s, const std::vector<std::pair<std::string, std::int64_t>>& uses);

} // namespace joule::db
