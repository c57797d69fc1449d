// The ioloop implementation of the adapter contract, through the public API only.

#ifndef IOLOOP_BENCH_ADAPTERS_IOLOOP_ADAPTER_H_
#define IOLOOP_BENCH_ADAPTERS_IOLOOP_ADAPTER_H_

#include <cstdint>
#include <vector>

#include "bench/adapters/adapter.h"
#include "ioloop/io_loop.h"

namespace ioloop::bench {

class IOLoopAdapter {
 public:
  static constexpr const char* kName = "ioloop";

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

}  // namespace ioloop::bench

#endif  // IOLOOP_BENCH_ADAPTERS_IOLOOP_ADAPTER_H_
