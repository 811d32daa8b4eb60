#include "cache/redis_client.hpp"

#include <hiredis/hiredis.h>

#include "config/settings.hpp"

namespace joule::cache {
namespace {

timeval to_timeval(std::chrono::milliseconds ms) {
  timeval tv;
  tv.tv_sec = static_cast<long>(ms.count() / 1000);
  tv.tv_usec = static_cast<long>((ms.count() % 1000) * 1000);
  return tv;
}

struct reply_guard {
  redisReply* r;
  ~reply_guard() {
    if (r)
      freeReplyObject(r);
  }
};

} // namespace

bool parse_redis_url(const std::string& url, std::string& host, std::uint16_t& port) {
  const std::string prefix = "redis://";
  if (url.compare(0, prefix.size(), prefix) != 0)
    return false;
  auto rest = url.substr(prefix.size());
  if (!rest.empty() && rest.back() == '/')
    rest.pop_back();
  return config::split_host_port(rest, host, port);
}

redis_client::redis_client(std::string host, std::uint16_t port,
                           std::chrono::milliseconds timeout)
  : host_(std::move(host)), port_(port), timeout_(timeout) {}

redis_client::~redis_client() { drop(); }

void redis_client::drop() {
  if (ctx_)
    redisFree(ctx_);
  ctx_ = nullptr;
}

void redis_client::connect() {
  if (ctx_)
    return;
  ctx_ = redisConnectWithTimeout(host_.c_str(), port_, to_timeval(timeout_));
  if (!ctx_)
    throw redis_error("cannot allocate redis context");
  if (ctx_->err) {
    std::string msg = ctx_->errstr;
    drop();
    throw redis_error("connect: " + msg);
  }
  // The connect timeout does not cover commands; this does.
  if (redisSetTimeout(ctx_, to_timeval(timeout_)) != REDIS_OK) {
    drop();
    throw redis_error("cannot set command timeout");
  }
}

std::optional<std::string> redis_client::get(const std::string& key) {
  connect();
  reply_guard g{static_cast<redisReply*>(redisCommand(ctx_, "GET %b", key.data(), key.size()))};
  if (!g.r) {
    std::string msg = ctx_->errstr;
    drop();
    throw redis_error("GET: " + msg);
  }
  if (g.r->type == REDIS_REPLY_NIL)
    return std::nullopt;
  if (g.r->type != REDIS_REPLY_STRING)
    throw redis_error("GET: unexpected reply type");
  return std::string(g.r->str, g.r->len);
}

void redis_client::set(const std::string& key, const std::string& value, std::int64_t ttl_ms) {
  connect();
  reply_guard g{static_cast<redisReply*>(
      redisCommand(ctx_, "SET %b %b PX %lld", key.data(), key.size(), value.data(),
                   value.size(), static_cast<long long>(ttl_ms)))};
  if (!g.r) {
    std::string msg = ctx_->errstr;
    drop();
    throw redis_error("SET: " + msg);
  }
  if (g.r->type == REDIS_REPLY_ERROR)
    throw redis_error(std::string("SET: ") + g.r->str);
}

void redis_client::ping() {
  connect();
  reply_guard g{static_cast<redisReply*>(redisCommand(ctx_, "PING"))};
  if (!g.r) {
    std::string msg = ctx_->errstr;
    drop();
    throw redis_error("PING: " + msg);
  }
  if (g.r->type == REDIS_REPLY_ERROR)
    throw redis_error(std::string("PING: ") + g.r->str);
}

} // namespace joule::cache
