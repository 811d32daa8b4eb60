#include "core/auth.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <algorithm>
#include <stdexcept>

namespace joule::auth {

const char* to_string(scope s) {
  switch (s) {
    case scope::none: return "none";
    case scope::read: return "read";
    case scope::ingest: return "ingest";
    case scope::alerts: return "alerts";
    case scope::admin: return "admin";
  }
  return "none";
}

std::optional<scope> scope_from(const std::string& name) {
  for (auto s : {scope::read, scope::ingest, scope::alerts, scope::admin})
    if (name == to_string(s))
      return s;
  return std::nullopt;
}

std::optional<scope_set> parse_scopes(const std::string& comma_list, std::string& bad) {
  scope_set out = 0;
  std::size_t pos = 0;
  while (pos <= comma_list.size()) {
    auto comma = comma_list.find(',', pos);
    auto item = comma_list.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    auto b = item.find_first_not_of(' ');
    auto e = item.find_last_not_of(' ');
    item = b == std::string::npos ? std::string{} : item.substr(b, e - b + 1);
    auto s = scope_from(item);
    if (!s) {
      bad = item;
      return std::nullopt;
    }
    out |= bit(*s);
    if (comma == std::string::npos)
      break;
    pos = comma + 1;
  }
  return out;
}

std::vector<std::string> scope_names(scope_set s) {
  std::vector<std::string> out;
  for (auto x : {scope::read, scope::ingest, scope::alerts, scope::admin})
    if (s & bit(x))
      out.emplace_back(to_string(x));
  return out;
}

bool identity::may_see(const std::string& household_id) const {
  return households.empty() ||
         std::binary_search(households.begin(), households.end(), household_id);
}

identity identity::anonymous_admin() {
  identity who;
  who.scopes = bit(scope::admin);
  return who;
}

namespace {

const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string base64url(const unsigned char* p, std::size_t n) {
  std::string out;
  std::size_t i = 0;
  for (; i + 3 <= n; i += 3) {
    unsigned v = (p[i] << 16) | (p[i + 1] << 8) | p[i + 2];
    out += b64url[(v >> 18) & 63];
    out += b64url[(v >> 12) & 63];
    out += b64url[(v >> 6) & 63];
    out += b64url[v & 63];
  }
  if (n - i == 1) {
    unsigned v = p[i] << 16;
    out += b64url[(v >> 18) & 63];
    out += b64url[(v >> 12) & 63];
  } else if (n - i == 2) {
    unsigned v = (p[i] << 16) | (p[i + 1] << 8);
    out += b64url[(v >> 18) & 63];
    out += b64url[(v >> 12) & 63];
    out += b64url[(v >> 6) & 63];
  }
  return out;
}

} // namespace

std::string new_token() {
  unsigned char raw[32];
  if (RAND_bytes(raw, sizeof raw) != 1)
    throw std::runtime_error("the CSPRNG failed (RAND_bytes)");
  auto out = std::string(token_prefix) + base64url(raw, sizeof raw);
  OPENSSL_cleanse(raw, sizeof raw);
  return out;
}

bool well_formed(const std::string& token) {
  if (token.size() != token_length || token.compare(0, 3, token_prefix) != 0)
    return false;
  for (std::size_t i = 3; i < token.size(); ++i) {
    char c = token[i];
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_';
    if (!ok)
      return false;
  }
  return true;
}

std::string sha256(const std::string& text) {
  // Every request hashes its token: the algorithm is fetched once (OpenSSL 3's one-shot
  // SHA256() fetches it on every call) and each thread reuses its digest context.
  static EVP_MD* const md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  struct ctx_holder {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    ~ctx_holder() { EVP_MD_CTX_free(ctx); }
  };
  thread_local ctx_holder holder;
  unsigned char out[SHA256_DIGEST_LENGTH];
  unsigned int len = 0;
  if (!md || !holder.ctx || EVP_DigestInit_ex2(holder.ctx, md, nullptr) != 1 ||
      EVP_DigestUpdate(holder.ctx, text.data(), text.size()) != 1 ||
      EVP_DigestFinal_ex(holder.ctx, out, &len) != 1 || len != sizeof out)
    throw std::runtime_error("SHA-256 failed");
  return std::string(reinterpret_cast<const char*>(out), sizeof out);
}

bool same_digest(const std::string& a, const std::string& b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string to_hex(const std::string& bytes) {
  static const char hex[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out += hex[c >> 4];
    out += hex[c & 15];
  }
  return out;
}

// --- rate_gate: GCRA. Each request moves the theoretical arrival time (tat) one emission
// interval (1/rate) forward from max(tat, now); a request is refused when that would put tat
// more than `burst` intervals ahead of now.

std::int64_t rate_gate::take(std::int64_t now_us, double rate, double burst) {
  if (rate <= 0)
    return 0;
  const auto interval = static_cast<std::int64_t>(1e6 / rate);
  const auto tolerance = static_cast<std::int64_t>(burst * 1e6 / rate);
  auto cur = tat_.load(std::memory_order_relaxed);
  for (;;) {
    auto next = std::max(cur, now_us) + interval;
    if (next - now_us > tolerance)
      return next - now_us - tolerance;
    if (tat_.compare_exchange_weak(cur, next, std::memory_order_relaxed))
      return 0;
  }
}

std::int64_t rate_gate::peek(std::int64_t now_us, double rate, double burst) const {
  if (rate <= 0)
    return 0;
  const auto interval = static_cast<std::int64_t>(1e6 / rate);
  const auto tolerance = static_cast<std::int64_t>(burst * 1e6 / rate);
  auto next = std::max(tat_.load(std::memory_order_relaxed), now_us) + interval;
  return next - now_us > tolerance ? next - now_us - tolerance : 0;
}

std::int64_t keyed_gates::peek(const std::string& key, std::int64_t now_us, double rate,
                               double burst) const {
  std::lock_guard<std::mutex> g{mtx_};
  auto it = gates_.find(key);
  if (it == gates_.end())
    return gates_.size() >= max_keys_ ? 1'000'000 : 0;
  return it->second->peek(now_us, rate, burst);
}

std::int64_t keyed_gates::take(const std::string& key, std::int64_t now_us, double rate,
                               double burst) {
  std::shared_ptr<rate_gate> gate;
  {
    std::lock_guard<std::mutex> g{mtx_};
    auto it = gates_.find(key);
    if (it == gates_.end()) {
      if (gates_.size() >= max_keys_) {
        // Forget keys whose bucket is full again: they carry no information.
        for (auto i = gates_.begin(); i != gates_.end();)
          i = i->second->idle(now_us) ? gates_.erase(i) : std::next(i);
      }
      if (gates_.size() >= max_keys_)
        return 1'000'000;  // every remembered key is busy failing: refuse newcomers too
      it = gates_.emplace(key, std::make_shared<rate_gate>()).first;
    }
    gate = it->second;
  }
  return gate->take(now_us, rate, burst);
}

std::size_t keyed_gates::size() const {
  std::lock_guard<std::mutex> g{mtx_};
  return gates_.size();
}

// --- token_cache

std::shared_ptr<token_entry> token_cache::find(const std::string& hash) const {
  std::shared_lock<std::shared_mutex> g{mtx_};
  auto it = by_hash_.find(hash);
  return it == by_hash_.end() ? nullptr : it->second;
}

std::shared_ptr<token_entry> token_cache::put(std::shared_ptr<token_entry> e) {
  std::unique_lock<std::shared_mutex> g{mtx_};
  auto it = by_hash_.find(e->hash);
  if (it != by_hash_.end()) {
    auto at = e->validated_at.load();
    auto cur = it->second->validated_at.load();
    while (cur < at && !it->second->validated_at.compare_exchange_weak(cur, at)) {
    }
    return it->second;
  }
  if (by_hash_.size() >= max_entries_)
    evict_locked();
  by_hash_.emplace(e->hash, e);
  return e;
}

void token_cache::evict_locked() {
  // The least recently used tenth goes (at least one); a token evicted while still in use is
  // looked up again on its next request.
  std::vector<std::pair<std::int64_t, std::string>> order;
  order.reserve(by_hash_.size());
  for (auto& [h, e] : by_hash_)
    order.emplace_back(e->last_used.load(std::memory_order_relaxed), h);
  auto n = std::max<std::size_t>(1, order.size() / 10);
  std::nth_element(order.begin(), order.begin() + static_cast<long>(n - 1), order.end());
  for (std::size_t i = 0; i < n; ++i)
    by_hash_.erase(order[i].second);
}

bool token_cache::remove_id(const std::string& token_id) {
  std::unique_lock<std::shared_mutex> g{mtx_};
  bool found = false;
  for (auto it = by_hash_.begin(); it != by_hash_.end();) {
    if (it->second->who.token_id == token_id) {
      it = by_hash_.erase(it);
      found = true;
    } else {
      ++it;
    }
  }
  return found;
}

void token_cache::remove_hash(const std::string& hash) {
  std::unique_lock<std::shared_mutex> g{mtx_};
  by_hash_.erase(hash);
}

std::vector<std::string> token_cache::hashes() const {
  std::shared_lock<std::shared_mutex> g{mtx_};
  std::vector<std::string> out;
  out.reserve(by_hash_.size());
  for (auto& kv : by_hash_)
    out.push_back(kv.first);
  return out;
}

std::vector<std::shared_ptr<token_entry>> token_cache::entries() const {
  std::shared_lock<std::shared_mutex> g{mtx_};
  std::vector<std::shared_ptr<token_entry>> out;
  out.reserve(by_hash_.size());
  for (auto& kv : by_hash_)
    out.push_back(kv.second);
  return out;
}

std::size_t token_cache::size() const {
  std::shared_lock<std::shared_mutex> g{mtx_};
  return by_hash_.size();
}

} // namespace joule::auth
