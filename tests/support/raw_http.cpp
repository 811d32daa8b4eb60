#include "tests/support/raw_http.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>

namespace joule::test {

raw_connection::raw_connection(std::uint16_t port) {
  fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd_ < 0)
    return;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
    close();
}

raw_connection::~raw_connection() { close(); }

void raw_connection::close() {
  if (fd_ >= 0)
    ::close(fd_);
  fd_ = -1;
}

bool raw_connection::send(const std::string& bytes) {
  std::size_t off = 0;
  while (fd_ >= 0 && off < bytes.size()) {
    auto n = ::send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return false;
    off += static_cast<std::size_t>(n);
  }
  return fd_ >= 0;
}

void raw_connection::shutdown_send() {
  if (fd_ >= 0)
    ::shutdown(fd_, SHUT_WR);
}

namespace {

// Waits until `fd` has data (or EOF/error) to read; false when `until` passes first.
bool readable(int fd, std::chrono::steady_clock::time_point until) {
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    until - std::chrono::steady_clock::now())
                    .count();
    if (left <= 0)
      return false;
    pollfd p{fd, POLLIN, 0};
    int r = ::poll(&p, 1, static_cast<int>(left));
    if (r < 0 && errno == EINTR)
      continue;
    return r > 0;
  }
}

} // namespace

bool raw_connection::fill(std::chrono::steady_clock::time_point until) {
  if (fd_ < 0)
    return false;
  for (;;) {
    if (!readable(fd_, until))
      return false;
    char tmp[16384];
    auto n = ::recv(fd_, tmp, sizeof tmp, 0);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return false;
    buf_.append(tmp, static_cast<std::size_t>(n));
    return true;
  }
}

http_result raw_connection::read_response(std::chrono::milliseconds timeout) {
  auto t0 = std::chrono::steady_clock::now();
  auto until = t0 + timeout;
  http_result out;
  std::size_t end;
  while ((end = buf_.find("\r\n\r\n")) == std::string::npos)
    if (!fill(until))
      return out;
  std::string head = buf_.substr(0, end);
  std::size_t pos = head.find("\r\n");
  std::string status_line = head.substr(0, pos);
  auto sp = status_line.find(' ');
  int status = sp == std::string::npos ? 0 : std::atoi(status_line.c_str() + sp + 1);
  while (pos != std::string::npos && pos < head.size()) {
    auto next = head.find("\r\n", pos + 2);
    auto line = head.substr(pos + 2, next == std::string::npos ? std::string::npos : next - pos - 2);
    auto colon = line.find(':');
    if (colon != std::string::npos) {
      std::string name = line.substr(0, colon);
      std::transform(name.begin(), name.end(), name.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      auto value = line.substr(colon + 1);
      value.erase(0, value.find_first_not_of(' '));
      out.headers[name] = value;
    }
    pos = next;
  }
  std::size_t length = out.headers.count("content-length")
                           ? std::strtoull(out.headers["content-length"].c_str(), nullptr, 10)
                           : 0;
  while (buf_.size() < end + 4 + length)
    if (!fill(until))
      return http_result{};
  out.status = status;
  out.body = buf_.substr(end + 4, length);
  buf_.erase(0, end + 4 + length);
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return out;
}

bool raw_connection::wait_closed(std::chrono::milliseconds timeout) {
  auto until = std::chrono::steady_clock::now() + timeout;
  while (fd_ >= 0) {
    if (!readable(fd_, until))
      return false;
    char tmp[16384];
    auto n = ::recv(fd_, tmp, sizeof tmp, 0);
    if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
      return true;
  }
  return true;
}

std::string get_request(const std::string& target, const std::string& extra_headers) {
  return "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" + extra_headers + "\r\n";
}

} // namespace joule::test
