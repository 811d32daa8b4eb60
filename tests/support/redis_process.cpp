#include "tests/support/redis_process.hpp"

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <thread>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace joule::test {

std::uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

namespace {
int run(const std::string& cmd) { return std::system(cmd.c_str()); }
} // namespace

redis_process::redis_process() : port_(free_port()) {
  dir_ = "/tmp/joule-test-redis-" + std::to_string(::getpid()) + "-" + std::to_string(port_);
}

redis_process::~redis_process() {
  stop();
  run("rm -rf " + dir_);
}

void redis_process::start() {
  if (running_)
    return;
  run("mkdir -p " + dir_);
  auto cmd = "redis-server --port " + std::to_string(port_) +
             " --bind 127.0.0.1 --daemonize yes --save '' --appendonly no --dir " + dir_ +
             " --pidfile " + dir_ + "/redis.pid --logfile " + dir_ + "/redis.log";
  if (run(cmd) != 0)
    throw std::runtime_error("cannot start redis-server");
  for (int i = 0; i < 100; ++i) {
    if (dbsize() >= 0) {
      running_ = true;
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  throw std::runtime_error("redis-server did not come up");
}

void redis_process::stop() {
  if (!running_)
    return;
  run("redis-cli -p " + std::to_string(port_) + " shutdown nosave >/dev/null 2>&1");
  for (int i = 0; i < 100 && dbsize() >= 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  running_ = false;
}

long redis_process::dbsize() const {
  auto cmd = "redis-cli -p " + std::to_string(port_) + " dbsize 2>/dev/null";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p)
    return -1;
  std::array<char, 64> buf{};
  std::string out;
  while (std::fgets(buf.data(), buf.size(), p))
    out += buf.data();
  int rc = ::pclose(p);
  if (rc != 0 || out.empty() || !std::isdigit(static_cast<unsigned char>(out[0])))
    return -1;
  return std::atol(out.c_str());
}

} // namespace joule::test
