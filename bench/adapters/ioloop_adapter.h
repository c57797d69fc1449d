// The ioloop implementation of the adapter contract, through the public API only.

#ifndef IOLOOP_BENCH_ADAPTERS_IOLOOP_ADAPTER_H_
#define IOLOOP_BENCH_ADAPTERS_IOLOOP_ADAPTER_H_

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "backends/default_poller.h"
#include "bench/adapters/adapter.h"
#include "ioloop/io_loop.h"

namespace ioloop::bench {

// The build's default backend (epoll on Linux unless --//backends:poller says else).
struct DefaultBackend {
  static constexpr const char* kName = "ioloop";
  static IOLoop::Options Options() { return {}; }
};

// io_uring, whatever the build's default, so one compare.sh run has both.
struct IoUringBackend {
  static constexpr const char* kName = "ioloop_uring";
  static IOLoop::Options Options() {
    IOLoop::Options options;
    auto poller = NewPoller("io_uring");
    if (!poller.ok()) {
      std::fprintf(stderr, "bench: %s\n", poller.status().ToString().c_str());
      std::exit(3);
    }
    options.poller = *std::move(poller);
    return options;
  }
};

template <class Backend>
class BasicIOLoopAdapter {
 public:
  static constexpr const char* kName = Backend::kName;

  BasicIOLoopAdapter() : loop_(Backend::Options()) {}

  template <class H>
  void WatchRead(int fd, H* h) {
    (void)loop_.AddHandler(
        fd, [h](int fd, EventMask) { h->OnReadable(fd); }, kRead);
  }
  void Unwatch(int fd) { (void)loop_.RemoveHandler(fd); }

  void InitTimers(size_t n) { timers_.assign(n, TimeoutHandle()); }
  void StartTimer(size_t i, int64_t delay_ns, Fn fn, void* arg) {
    timers_[i] = loop_.AddTimeout(absl::Nanoseconds(delay_ns), [fn, arg] { fn(arg); });
  }
  void CancelTimer(size_t i) { loop_.RemoveTimeout(timers_[i]); }

  void Post(Fn fn, void* arg) {
    loop_.AddCallback([fn, arg] { fn(arg); });
  }

  void Run() { loop_.Start(); }
  void Stop() { loop_.Stop(); }
  void PollOnce() {
    loop_.AddCallback([this] { loop_.Stop(); });
    loop_.Start();
  }
  int64_t WakeupsSent() const { return static_cast<int64_t>(loop_.Metrics().wakeups_sent); }

 private:
  IOLoop loop_;
  std::vector<TimeoutHandle> timers_;
};

using IOLoopAdapter = BasicIOLoopAdapter<DefaultBackend>;
using IOLoopUringAdapter = BasicIOLoopAdapter<IoUringBackend>;

}  // namespace ioloop::bench

#endif  // IOLOOP_BENCH_ADAPTERS_IOLOOP_ADAPTER_H_
