#include "tests/support/tcp_proxy.hpp"

#include <array>
#include <atomic>
#include <condition_variable>
#include <list>
#include <mutex>
#include <thread>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

namespace joule::test {

namespace net = boost::asio;
using tcp = net::ip::tcp;

struct tcp_proxy::impl {
  struct link : std::enable_shared_from_this<link> {
    tcp::socket a, b;
    std::array<char, 8192> ab{}, ba{};
    explicit link(net::io_context& ioc) : a(ioc), b(ioc) {}
    void pump(tcp::socket& from, tcp::socket& to, std::array<char, 8192>& buf) {
      from.async_read_some(net::buffer(buf), [self = shared_from_this(), &from, &to, &buf](
                                                 boost::system::error_code ec, std::size_t n) {
        if (ec)
          return self->close();
        net::async_write(to, net::buffer(buf.data(), n),
                         [self, &from, &to, &buf](boost::system::error_code wec, std::size_t) {
                           if (wec)
                             return self->close();
                           self->pump(from, to, buf);
                         });
      });
    }
    void close() {
      boost::system::error_code ec;
      a.close(ec);
      b.close(ec);
    }
  };

  net::io_context ioc;
  tcp::acceptor acceptor{ioc, tcp::endpoint{net::ip::make_address("127.0.0.1"), 0}};
  std::uint16_t upstream;
  std::atomic<bool> open{true};
  std::list<std::weak_ptr<link>> links;
  std::thread thread;

  void accept() {
    acceptor.async_accept([this](boost::system::error_code ec, tcp::socket s) {
      if (ec)
        return;
      if (!open) {
        s.close(ec);  // refused: connection closed at once
      } else {
        auto l = std::make_shared<link>(ioc);
        l->a = std::move(s);
        l->b.connect(tcp::endpoint{net::ip::make_address("127.0.0.1"), upstream}, ec);
        if (ec) {
          l->close();
        } else {
          links.push_back(l);
          l->pump(l->a, l->b, l->ab);
          l->pump(l->b, l->a, l->ba);
        }
      }
      accept();
    });
  }
};

tcp_proxy::tcp_proxy(std::uint16_t upstream_port) : impl_(std::make_unique<impl>()) {
  impl_->upstream = upstream_port;
  impl_->accept();
  impl_->thread = std::thread([this] { impl_->ioc.run(); });
}

tcp_proxy::~tcp_proxy() {
  impl_->ioc.stop();
  impl_->thread.join();
}

std::uint16_t tcp_proxy::port() const { return impl_->acceptor.local_endpoint().port(); }

void tcp_proxy::cut() {
  impl_->open = false;
  std::mutex m;
  std::unique_lock<std::mutex> lock{m};
  std::condition_variable cv;
  bool done = false;
  net::post(impl_->ioc, [&] {
    for (auto& w : impl_->links)
      if (auto l = w.lock())
        l->close();
    impl_->links.clear();
    std::lock_guard<std::mutex> g{m};
    done = true;
    cv.notify_one();
  });
  cv.wait(lock, [&] { return done; });
}

void tcp_proxy::restore() { impl_->open = true; }

} // namespace joule::test
