#pragma once
// Identity and tenancy: API tokens, their scopes and households, the verified-token cache the
// HTTP layer reads on every request, and the auth actor that fills and re-validates it.
//
// A token is `jl_` + 256 random bits (base64url). Only its SHA-256 is stored (db/tokens.cpp,
// table api_tokens) and kept in memory; the secret itself exists only in the answer that
// created it and in the caller's Authorization header.

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/interfaces.hpp"

namespace joule::auth {

/// What a route needs and what a token grants. `admin` implies every other scope.
enum class scope : std::uint8_t { none = 0, read = 1, ingest = 2, alerts = 4, admin = 8 };

/// A set of scopes (bit-or of `scope` values).
using scope_set = std::uint8_t;

constexpr scope_set bit(scope s) { return static_cast<scope_set>(s); }

/// True when `have` grants `need` (none: always; admin grants everything).
constexpr bool grants(scope_set have, scope need) {
  return need == scope::none || (have & bit(scope::admin)) != 0 || (have & bit(need)) != 0;
}

/// "read", "ingest", "alerts", "admin" (none: "none").
const char* to_string(scope s);
/// The scope named `name`, or nullopt.
std::optional<scope> scope_from(const std::string& name);
/// Parses "read,ingest" (no empty items, no duplicates needed); nullopt names the bad item in
/// `bad`. An empty list is invalid.
std::optional<scope_set> parse_scopes(const std::string& comma_list, std::string& bad);
/// The scope names of `s` in a fixed order (read, ingest, alerts, admin).
std::vector<std::string> scope_names(scope_set s);

/// Who is calling: the token's id, scopes and households. Handlers use it to restrict what a
/// household-bound token sees.
struct identity {
  std::string token_id;                 // empty: anonymous (auth.required = false)
  scope_set scopes = 0;
  std::vector<std::string> households;  // sorted, lower-case UUIDs; empty = every household

  bool restricted() const { return !households.empty(); }
  /// True when the caller may see household `id` (a normalised UUID).
  bool may_see(const std::string& household_id) const;
  /// The caller used when auth.required = false and no token was sent.
  static identity anonymous_admin();
};

// --- token secrets and hashes ----------------------------------------------------------------

constexpr const char* token_prefix = "jl_";
/// Length of a token: prefix + 43 base64url characters (32 random bytes, no padding).
constexpr std::size_t token_length = 3 + 43;

/// A new token secret from OpenSSL's CSPRNG (RAND_bytes); throws if the CSPRNG fails.
std::string new_token();
/// True when `token` has the shape of a Joule token (prefix, length, base64url alphabet).
bool well_formed(const std::string& token);
/// SHA-256 of `text`, 32 raw bytes.
std::string sha256(const std::string& text);
/// Constant-time equality of two digests (CRYPTO_memcmp); false when the sizes differ.
bool same_digest(const std::string& a, const std::string& b);
/// Lower-case hex of `bytes` (digests in SQL parameters and logs of hashes, never of secrets).
std::string to_hex(const std::string& bytes);

// --- rate limiting ---------------------------------------------------------------------------

/// A token bucket as GCRA (one atomic "theoretical arrival time"): `rate` requests per second
/// on average, bursts of up to `burst`. Lock-free, so every request of a token can share it.
class rate_gate {
public:
  /// Takes one request at `now_us`; 0 when allowed, otherwise the µs until one would be.
  std::int64_t take(std::int64_t now_us, double rate, double burst);
  /// Like take() without taking: the µs until a request would be allowed (0: now).
  std::int64_t peek(std::int64_t now_us, double rate, double burst) const;
  /// True when the bucket is full again at `now_us` (nothing to remember).
  bool idle(std::int64_t now_us) const { return tat_.load(std::memory_order_relaxed) <= now_us; }

private:
  std::atomic<std::int64_t> tat_{0};
};

/// Rate gates per key (client address), bounded: idle keys are forgotten when the table is
/// full, and when every key is busy a new key is refused (it is rate limited at once).
class keyed_gates {
public:
  explicit keyed_gates(std::size_t max_keys) : max_keys_(max_keys) {}
  /// µs until `key` may fail again (0: it may).
  std::int64_t peek(const std::string& key, std::int64_t now_us, double rate, double burst) const;
  /// Counts one event of `key`; returns the µs until another would be allowed.
  std::int64_t take(const std::string& key, std::int64_t now_us, double rate, double burst);
  std::size_t size() const;

private:
  std::size_t max_keys_;
  mutable std::mutex mtx_;
  std::unordered_map<std::string, std::shared_ptr<rate_gate>> gates_;
};

// --- the verified-token cache ----------------------------------------------------------------

/// A verified token as the HTTP layer needs it.
struct token_entry {
  std::string hash;               // SHA-256 of the secret, 32 raw bytes
  identity who;
  std::int64_t expires_at = 0;    // µs since the epoch; 0: never
  /// When the database last confirmed the token valid (µs, local clock).
  std::atomic<std::int64_t> validated_at{0};
  /// Last request that used it (µs; flushed to api_tokens.last_used_at now and then).
  std::atomic<std::int64_t> last_used{0};
  rate_gate gate;
};

/// Verified tokens by hash, shared between the auth actor (writer) and every request (reader,
/// without a database round trip). Bounded: when full, the least recently used entries go.
class token_cache {
public:
  explicit token_cache(std::size_t max_entries) : max_entries_(max_entries) {}

  /// The entry for `hash`, or null.
  std::shared_ptr<token_entry> find(const std::string& hash) const;
  /// Adds an entry; when the hash is already cached, the cached entry (and its rate gate) stays
  /// and only its validated_at moves forward. Returns the entry now cached.
  std::shared_ptr<token_entry> put(std::shared_ptr<token_entry> e);
  /// Drops the entry with this token id (revoked here); true when there was one.
  bool remove_id(const std::string& token_id);
  /// Drops the entry with this hash.
  void remove_hash(const std::string& hash);
  /// Every cached hash (for re-validation).
  std::vector<std::string> hashes() const;
  /// Every cached entry.
  std::vector<std::shared_ptr<token_entry>> entries() const;
  std::size_t size() const;

private:
  void evict_locked();
  std::size_t max_entries_;
  mutable std::shared_mutex mtx_;
  std::unordered_map<std::string, std::shared_ptr<token_entry>> by_hash_;
};

/// An entry the database confirmed within this long may be used without asking again; past
/// it (re-validation failing) the token is looked up afresh. Keeps revocation under 5 s even
/// when the periodic re-validation stalls.
constexpr std::int64_t max_staleness_us = 4'000'000;

/// What the auth actor answers for a hash the cache did not hold: the verified entry, or null
/// (unknown, expired or revoked).
struct verdict {
  std::shared_ptr<token_entry> entry;
};

} // namespace joule::auth

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(joule::auth::verdict)

namespace joule {

using verify_atom = caf::atom_constant<caf::atom("verify")>;
using revoke_atom = caf::atom_constant<caf::atom("revoke")>;

/// Fills and re-validates the token cache (db/auth_actor.cpp, its own DB connection).
using auth_actor = caf::typed_actor<
  /// Looks a token hash up in the database (single-flight per hash) and caches a valid one;
  /// answers a null entry for an unknown, expired or revoked token; fails unavailable when the
  /// database cannot be asked.
  caf::replies_to<verify_atom, std::string>::with<auth::verdict>,
  /// Token `id` was revoked on this instance: drops it from the cache now (answers whether it
  /// was cached).
  caf::replies_to<revoke_atom, std::string>::with<bool>,
  /// Internal: time to re-validate the cache.
  caf::reacts_to<tick_atom>,
  /// Status as JSON (cached tokens, refreshes, failures).
  caf::replies_to<status_atom>::with<std::string>>;

} // namespace joule
