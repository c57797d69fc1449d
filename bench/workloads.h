// The benchmark workloads, written once as templates over an adapter (see
// bench/adapters/adapter.h) and run unchanged against ioloop, libevent, libuv and raw.
// Every workload checks its own counts and aborts with a message when they are wrong:
// a fast wrong answer must never reach a table.

#ifndef IOLOOP_BENCH_WORKLOADS_H_
#define IOLOOP_BENCH_WORKLOADS_H_

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <thread>
#include <vector>

#include "base/process_stats.h"
#include "bench/adapters/adapter.h"

namespace ioloop::bench {

[[noreturn]] inline void Fail(const char* what) {
  std::fprintf(stderr, "benchmark workload failed its own check: %s\n", what);
  std::abort();
}

using base::PeakRssKb;
using base::RaiseFdLimit;
using base::ThreadCpuNanos;

// --- W1: pipe chain (libevent's test/bench.c) ------------------------------------
// N socketpairs; a readable pair's handler reads its 1-byte token and writes it to
// the next pair. `active` tokens circulate at once.
template <class Loop>
class PipeChain {
 public:
  PipeChain(Loop& loop, int pairs, int active) : loop_(loop), active_(active) {
    if (RaiseFdLimit() < static_cast<rlim_t>(2 * pairs + 64)) Fail("RLIMIT_NOFILE too low for W1");
    for (int i = 0; i < pairs; ++i) {
      int fds[2];
      if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0)
        Fail("socketpair");
      reads_.push_back(fds[0]);
      writes_.push_back(fds[1]);
    }
    int max_fd = 0;
    for (int fd : reads_) max_fd = std::max(max_fd, fd);
    next_write_.assign(max_fd + 1, -1);
    for (int i = 0; i < pairs; ++i) next_write_[reads_[i]] = writes_[(i + 1) % pairs];
  }
  ~PipeChain() {
    for (int fd : reads_) close(fd);
    for (int fd : writes_) close(fd);
  }

  void WatchAll() {
    for (int fd : reads_) loop_.WatchRead(fd, this);
  }
  void UnwatchAll() {
    for (int fd : reads_) loop_.Unwatch(fd);
  }
  void Seed() {
    const int pairs = static_cast<int>(reads_.size());
    for (int t = 0; t < active_; ++t) {
      if (write(writes_[static_cast<size_t>(t) * pairs / active_], "t", 1) != 1) Fail("seed write");
    }
  }
  // Dispatches at least `events` more read events; returns how many ran.
  uint64_t Run(uint64_t events) {
    const uint64_t before = count_;
    target_ = count_ + events;
    loop_.Run();
    if (count_ < target_) Fail("W1 stopped early");
    return count_ - before;
  }
  // Counts the tokens still in the pipes: must equal `active`.
  int DrainTokens() {
    int tokens = 0;
    char buf[64];
    for (int fd : reads_) {
      ssize_t n;
      while ((n = read(fd, buf, sizeof buf)) > 0) tokens += static_cast<int>(n);
    }
    return tokens;
  }

  void OnReadable(int fd) {
    char token;
    if (read(fd, &token, 1) != 1) Fail("W1 handler called with nothing to read");
    if (write(next_write_[fd], &token, 1) != 1) Fail("W1 write");
    if (++count_ == target_) loop_.Stop();
  }

 private:
  Loop& loop_;
  const int active_;
  std::vector<int> reads_, writes_, next_write_;
  uint64_t count_ = 0;
  uint64_t target_ = 0;
};

// --- W2 / W3: timers ---------------------------------------------------------------
template <class Loop>
class TimerStorm {
 public:
  // `slots`: timer objects to prepare (W2 needs n, W3 reuses one).
  TimerStorm(Loop& loop, size_t n, size_t slots) : loop_(loop), n_(n) { loop_.InitTimers(slots); }

  // W2 (a): n distinct deadlines already due. (b): random deadlines in the next 50 ms.
  // Schedules all from one callback on the running loop (where servers schedule
  // timers, and where loops that cache the time count from the iteration's reading),
  // runs until all fired; verifies each fired exactly once.
  void ScheduleAndFire(bool already_due, uint64_t seed) {
    fired_ = 0;
    flags_.assign(n_, 0);
    already_due_ = already_due;
    seed_ = seed;
    args_.resize(n_);
    loop_.Post(&ScheduleAll, this);
    loop_.Run();
    if (fired_ != n_) Fail("W2: not every timer fired");
    for (uint8_t f : flags_) {
      if (f != 1) Fail("W2: a timer fired twice or never");
    }
  }

  // W3: n timeouts 60 s out, each removed right after it is added (one timer object
  // reused, the network-timeout pattern), from a callback on the running loop.
  void AddRemoveChurn() {
    loop_.Post(&Churn, this);
    loop_.Run();
    loop_.PollOnce();  // Any cancelled timer that fired anyway would abort here.
  }

 private:
  struct Arg {
    TimerStorm* self;
    size_t index;
  };
  static void Fired(void* p) {
    Arg* a = static_cast<Arg*>(p);
    ++a->self->flags_[a->index];
    if (++a->self->fired_ == a->self->n_) a->self->loop_.Stop();
  }
  static void NeverFires(void*) { Fail("W3: a cancelled timer fired"); }
  static void ScheduleAll(void* p) {
    TimerStorm* self = static_cast<TimerStorm*>(p);
    std::mt19937_64 rng(self->seed_);
    for (size_t i = 0; i < self->n_; ++i) {
      const int64_t delay = self->already_due_ ? -static_cast<int64_t>(self->n_ - i)
                                               : static_cast<int64_t>(rng() % 50000000);
      self->args_[i] = {self, i};
      self->loop_.StartTimer(i, delay, &Fired, &self->args_[i]);
    }
  }
  static void Churn(void* p) {
    TimerStorm* self = static_cast<TimerStorm*>(p);
    for (size_t i = 0; i < self->n_; ++i) {
      self->loop_.StartTimer(0, 60'000'000'000LL, &NeverFires, self);
      self->loop_.CancelTimer(0);
    }
    self->loop_.Stop();
  }

  Loop& loop_;
  const size_t n_;
  size_t fired_ = 0;
  bool already_due_ = false;
  uint64_t seed_ = 0;
  std::vector<uint8_t> flags_;
  std::vector<Arg> args_;
};

// --- W4: cross-thread callbacks ----------------------------------------------------
template <class Loop>
struct CrossThread {
  static constexpr int kThreads = 2;

  // Posts `per_thread` callbacks from each of kThreads threads; the loop runs them all.
  static void Run(Loop& loop, int per_thread) {
    struct State {
      Loop* loop;
      int64_t total;
      int64_t ran = 0;
    } state{&loop, static_cast<int64_t>(kThreads) * per_thread};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&] {
        for (int i = 0; i < per_thread; ++i) {
          loop.Post(
              [](void* p) {
                State* s = static_cast<State*>(p);
                if (++s->ran == s->total) s->loop->Stop();
              },
              &state);
        }
      });
    }
    loop.Run();
    for (std::thread& t : threads) t.join();
    if (state.ran != state.total) Fail("W4: callbacks lost or repeated");
  }
};

// --- W5: TCP echo ------------------------------------------------------------------
// The server: accept on loopback, echo 64-byte messages, through the adapter.
template <class Loop>
class EchoServerWorkload {
 public:
  explicit EchoServerWorkload(Loop& loop) : loop_(loop) {
    listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    sockaddr_in addr = {};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const int one = 1;
    setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        listen(listen_fd_, 512) != 0) {
      Fail("W5 listen");
    }
    socklen_t len = sizeof addr;
    getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    loop_.WatchRead(listen_fd_, this);
  }
  ~EchoServerWorkload() {
    loop_.Unwatch(listen_fd_);
    close(listen_fd_);
  }
  int port() const { return port_; }
  // Runs until `connections` clients have connected and all have closed.
  void ServeUntilAllClosed(int connections) {
    expected_ = connections;
    loop_.Run();
  }
  uint64_t messages() const { return messages_; }

  void OnReadable(int fd) {
    if (fd == listen_fd_) {
      int c;
      while ((c = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
        const int one = 1;
        setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        ++accepted_;
        loop_.WatchRead(c, this);
      }
      return;
    }
    char buf[4096];
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n > 0) {
      const ssize_t w = send(fd, buf, static_cast<size_t>(n), MSG_NOSIGNAL);
      if (w == n) {
        messages_ += static_cast<uint64_t>(n) / 64;
        return;
      }
      if (w >= 0 || (errno != EPIPE && errno != ECONNRESET)) Fail("W5 server short write");
    } else if (n < 0 && errno == EAGAIN) {
      return;
    }
    loop_.Unwatch(fd);
    close(fd);
    if (++closed_ == expected_ && accepted_ == expected_) loop_.Stop();
  }

 private:
  Loop& loop_;
  int listen_fd_ = -1;
  int port_ = 0;
  int expected_ = 0;
  int accepted_ = 0;
  int closed_ = 0;
  uint64_t messages_ = 0;
};

// The client (shared by every server): `connections` loopback connections doing
// 64-byte ping-pong for `duration`, on its own epoll. Returns round trips completed.
inline uint64_t EchoClient(int port, int connections, std::chrono::nanoseconds duration) {
  const int ep = epoll_create1(EPOLL_CLOEXEC);
  std::vector<int> fds;
  std::vector<int> got(1 << 16, 0);
  char msg[64];
  for (int i = 0; i < 64; ++i) msg[i] = static_cast<char>('a' + i % 26);
  sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  for (int i = 0; i < connections; ++i) {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) Fail("W5 connect");
    const int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    fds.push_back(fd);
    if (write(fd, msg, 64) != 64) Fail("W5 client write");
  }
  uint64_t round_trips = 0;
  const auto end = std::chrono::steady_clock::now() + duration;
  epoll_event events[64];
  while (std::chrono::steady_clock::now() < end) {
    const int n = epoll_wait(ep, events, 64, 100);
    for (int i = 0; i < n; ++i) {
      const int fd = events[i].data.fd;
      char buf[128];
      const ssize_t r = read(fd, buf, sizeof buf);
      if (r <= 0) Fail("W5 client read");
      got[fd] += static_cast<int>(r);
      if (got[fd] > 64) Fail("W5 client got more than it sent");
      if (got[fd] == 64) {
        got[fd] = 0;
        ++round_trips;
        if (write(fd, msg, 64) != 64) Fail("W5 client write");
      }
    }
  }
  for (int fd : fds) close(fd);
  close(ep);
  return round_trips;
}

}  // namespace ioloop::bench

#endif  // IOLOOP_BENCH_WORKLOADS_H_
