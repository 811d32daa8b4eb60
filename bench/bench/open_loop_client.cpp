#include "bench/open_loop_client.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/write.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/optional.hpp>

#include <algorithm>
#include <deque>
#include <memory>
#include <optional>
#include <stdexcept>
#include <thread>

#include "common/open_loop_schedule.hpp"

namespace joule::bench {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using clock_type = std::chrono::steady_clock;

cache_outcome parse_cache_header(beast::string_view v) {
  if (v == "hit")
    return cache_outcome::hit;
  if (v == "miss")
    return cache_outcome::miss;
  if (v == "bypass")
    return cache_outcome::bypass;
  return cache_outcome::none;
}

class engine;

// The response body is counted, never stored: the load generator shares the machine with the
// server it measures, and copying every answer into a string (and freeing it) made it cost
// more CPU per request than the server (issue 9's poll at 8,000 req/s: 0.88 vs 0.50 of a core).
struct discard_body {
  using value_type = std::uint64_t;  // bytes received
  static std::uint64_t size(const value_type& v) { return v; }
  class reader {
  public:
    template <bool isRequest, class Fields>
    reader(http::header<isRequest, Fields>&, value_type& bytes) : bytes_(bytes) {}
    void init(const boost::optional<std::uint64_t>&, beast::error_code& ec) { ec = {}; }
    template <class ConstBufferSequence>
    std::size_t put(const ConstBufferSequence& buffers, beast::error_code& ec) {
      ec = {};
      const auto n = asio::buffer_size(buffers);
      bytes_ += n;
      return n;
    }
    void finish(beast::error_code& ec) { ec = {}; }

  private:
    value_type& bytes_;
  };
};

// One keep-alive connection; owned by the engine, used by one request at a time.
class connection {
public:
  explicit connection(engine& e);
  void send(uint64_t index);
  bool connect_now(const asio::ip::tcp::endpoint& ep);
  // The watchdog: a request still open past its deadline is cut (recorded as a timeout).
  void check_deadline(clock_type::time_point now);

private:
  void write_request();
  void on_read(beast::error_code ec);
  void fail(beast::error_code ec);
  void close();

  engine& engine_;
  asio::ip::tcp::socket socket_;
  beast::flat_buffer buffer_;
  std::string request_;  // serialised once per send into a reused buffer
  std::optional<http::response_parser<discard_body>> parser_;
  uint64_t index_ = 0;
  bool connected_ = false;
  bool busy_ = false;
  bool timed_out_ = false;
  clock_type::time_point deadline_{};
};

// One thread's share of the schedule: requests first, first + stride, first + 2·stride, …
class engine {
public:
  engine(const open_loop_options& o, const std::vector<load_request>& requests,
         const open_loop_schedule& schedule, uint64_t first, uint64_t stride, int connections)
      : options_(o), requests_(requests), schedule_(schedule), next_(first), stride_(stride),
        dispatch_timer_(ioc_), drain_timer_(ioc_), watchdog_(ioc_),
        endpoint_(asio::ip::make_address(o.url.host), o.url.port) {
    for (int i = 0; i < connections; ++i)
      connections_.push_back(std::make_unique<connection>(*this));
  }

  // Connects the pool up front so connection set-up does not land in the first latencies.
  void connect_all() {
    for (auto& c : connections_)
      c->connect_now(endpoint_);
    for (auto& c : connections_)
      idle_.push_back(c.get());
  }

  void run(clock_type::time_point t0) {
    t0_ = t0;
    outcomes_.reserve(schedule_.count() / stride_ + 1);
    dispatch_timer_.expires_at(t0_);
    dispatch_timer_.async_wait([this](beast::error_code ec) { on_dispatch(ec); });
    arm_watchdog();
    ioc_.run();
  }

  // Called by a connection.
  asio::io_context& ioc() { return ioc_; }
  const open_loop_options& options() const { return options_; }
  const asio::ip::tcp::endpoint& endpoint() const { return endpoint_; }
  const load_request& request(uint64_t i) const { return requests_[i % requests_.size()]; }

  void record(uint64_t i, int status, bool timed_out, cache_outcome cache) {
    auto intended = t0_ + schedule_.offset(i);
    auto now = clock_type::now();
    last_completion_ = std::max(last_completion_, now);
    outcomes_.push_back({request(i).endpoint, status, timed_out, cache,
                         std::chrono::duration_cast<std::chrono::nanoseconds>(now - intended).count()});
  }

  void on_idle(connection* c) {
    idle_.push_back(c);
    assign();
    check_finished();
  }

  std::vector<request_outcome>& outcomes() { return outcomes_; }
  clock_type::time_point last_completion() const { return last_completion_; }

private:
  // One timer for every connection's deadline instead of one per socket operation (Beast's
  // tcp_stream arms and cancels a timer around each read and write).
  void arm_watchdog() {
    watchdog_.expires_after(std::chrono::milliseconds(50));
    watchdog_.async_wait([this](beast::error_code ec) {
      if (ec || stopped_)
        return;
      const auto now = clock_type::now();
      for (auto& c : connections_)
        c->check_deadline(now);
      arm_watchdog();
    });
  }

  void on_dispatch(beast::error_code ec) {
    if (ec)
      return;
    const uint64_t due = schedule_.due_by(clock_type::now() - t0_);
    for (; next_ < due; next_ += stride_)
      pending_.push_back(next_);
    assign();
    if (next_ < schedule_.count()) {
      dispatch_timer_.expires_at(t0_ + schedule_.offset(next_));
      dispatch_timer_.async_wait([this](beast::error_code e) { on_dispatch(e); });
      return;
    }
    dispatch_done_ = true;
    // Give queued requests one timeout's worth of time to get a connection, then give up.
    drain_timer_.expires_at(t0_ + options_.duration + options_.timeout);
    drain_timer_.async_wait([this](beast::error_code e) {
      if (e)
        return;
      for (uint64_t i : pending_)
        record(i, 0, true, cache_outcome::none);
      pending_.clear();
      check_finished();
    });
    check_finished();
  }

  void assign() {
    while (!idle_.empty() && !pending_.empty()) {
      connection* c = idle_.back();
      idle_.pop_back();
      uint64_t i = pending_.front();
      pending_.pop_front();
      c->send(i);
    }
  }

  void check_finished() {
    if (dispatch_done_ && pending_.empty() && idle_.size() == connections_.size()) {
      drain_timer_.cancel();
      stopped_ = true;
      watchdog_.cancel();
      ioc_.stop();
    }
  }

  const open_loop_options& options_;
  const std::vector<load_request>& requests_;
  const open_loop_schedule& schedule_;
  uint64_t next_;
  const uint64_t stride_;
  asio::io_context ioc_{1};
  asio::steady_timer dispatch_timer_;
  asio::steady_timer drain_timer_;
  asio::steady_timer watchdog_;
  bool stopped_ = false;
  asio::ip::tcp::endpoint endpoint_;
  std::vector<std::unique_ptr<connection>> connections_;
  std::vector<connection*> idle_;
  std::deque<uint64_t> pending_;
  std::vector<request_outcome> outcomes_;
  clock_type::time_point t0_{};
  clock_type::time_point last_completion_{};
  bool dispatch_done_ = false;
};

connection::connection(engine& e) : engine_(e), socket_(e.ioc()) {
  // Beast reads at most the buffer's free capacity per recv (512 bytes when it starts empty,
  // and the parser drains it, so it never grows): a 15 kB answer took ~30 recv calls and
  // async hops. Room for a whole answer makes it one or two.
  buffer_.reserve(64 * 1024);
}

bool connection::connect_now(const asio::ip::tcp::endpoint& ep) {
  beast::error_code ec;
  socket_.connect(ep, ec);
  if (ec)
    return false;
  socket_.set_option(asio::ip::tcp::no_delay(true));
  connected_ = true;
  return true;
}

void connection::check_deadline(clock_type::time_point now) {
  if (busy_ && !timed_out_ && now >= deadline_) {
    timed_out_ = true;
    beast::error_code ignored;
    socket_.cancel(ignored);  // the pending operation completes with operation_aborted
  }
}

void connection::send(uint64_t index) {
  index_ = index;
  busy_ = true;
  timed_out_ = false;
  deadline_ = clock_type::now() + engine_.options().timeout;
  const auto& r = engine_.request(index);
  const auto& o = engine_.options();
  request_.clear();
  request_ += r.body.empty() ? "GET " : "POST ";
  request_ += o.url.base_path;
  request_ += r.target;
  request_ += " HTTP/1.1\r\nHost: ";
  request_ += o.url.host;
  request_ += "\r\n";
  if (!o.bearer.empty()) {
    request_ += "Authorization: Bearer ";
    request_ += o.bearer;
    request_ += "\r\n";
  }
  if (!r.body.empty()) {
    request_ += "Content-Type: application/json\r\nContent-Length: ";
    request_ += std::to_string(r.body.size());
    request_ += "\r\n\r\n";
    request_ += r.body;
  } else {
    request_ += "\r\n";
  }
  if (connected_) {
    write_request();
    return;
  }
  buffer_.clear();
  socket_.async_connect(engine_.endpoint(), [this](beast::error_code ec) {
    if (ec)
      return fail(ec);
    socket_.set_option(asio::ip::tcp::no_delay(true), ec);
    connected_ = true;
    write_request();
  });
}

void connection::write_request() {
  asio::async_write(socket_, asio::buffer(request_), [this](beast::error_code ec, std::size_t) {
    if (ec)
      return fail(ec);
    parser_.emplace();
    parser_->body_limit(64 * 1024 * 1024);
    http::async_read(socket_, buffer_, *parser_,
                     [this](beast::error_code e, std::size_t) { on_read(e); });
  });
}

void connection::on_read(beast::error_code ec) {
  if (ec)
    return fail(ec);
  auto& res = parser_->get();
  cache_outcome cache = cache_outcome::none;
  if (auto it = res.find("X-Cache"); it != res.end())
    cache = parse_cache_header(it->value());
  busy_ = false;
  engine_.record(index_, static_cast<int>(res.result_int()), false, cache);
  if (!res.keep_alive())
    close();
  parser_.reset();
  engine_.on_idle(this);
}

void connection::fail(beast::error_code ec) {
  busy_ = false;
  engine_.record(index_, 0, timed_out_ || ec == beast::error::timeout, cache_outcome::none);
  close();
  engine_.on_idle(this);
}

void connection::close() {
  beast::error_code ignored;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
  connected_ = false;
  buffer_.clear();
}

} // namespace

open_loop_run run_open_loop(const open_loop_options& o, const std::vector<load_request>& requests) {
  if (requests.empty())
    throw std::invalid_argument("open-loop run without requests");
  const int threads = std::clamp(o.threads, 1, 2);
  const int connections = std::max(o.connections, threads);
  const open_loop_schedule schedule(o.rate, o.duration);

  std::vector<std::unique_ptr<engine>> engines;
  for (int t = 0; t < threads; ++t)
    engines.push_back(std::make_unique<engine>(o, requests, schedule, static_cast<uint64_t>(t),
                                               static_cast<uint64_t>(threads),
                                               connections / threads + (t < connections % threads)));
  for (auto& e : engines)
    e->connect_all();

  // A short lead so every thread is waiting on its timer before the first request is due.
  const auto t0 = clock_type::now() + std::chrono::milliseconds(20);
  std::vector<std::thread> workers;
  for (auto& e : engines)
    workers.emplace_back([&e, t0] { e->run(t0); });
  for (auto& w : workers)
    w.join();

  open_loop_run run;
  auto last = t0;
  for (auto& e : engines) {
    auto& out = e->outcomes();
    run.outcomes.insert(run.outcomes.end(), out.begin(), out.end());
    last = std::max(last, e->last_completion());
  }
  run.elapsed_s = std::chrono::duration<double>(last - t0).count();
  return run;
}

open_loop_options load_options(const cli_args& a, const http_url& url, double rate,
                               std::chrono::nanoseconds duration, int connections) {
  open_loop_options o;
  o.url = url;
  o.rate = rate;
  o.duration = duration;
  o.connections = static_cast<int>(a.get_int("connections", connections));
  o.threads = static_cast<int>(a.get_int("threads", 1));
  o.timeout = a.get_duration("timeout", std::chrono::seconds(2));
  if (a.has("token"))
    o.bearer = a.get("token", "");
  return o;
}

} // namespace joule::bench
