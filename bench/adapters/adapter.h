// The benchmark adapter contract. Each implementation (ioloop, libevent, libuv, raw)
// provides a class with exactly these members, so every workload in
// bench/workloads.h is one template run unchanged against all four:
//
//   static constexpr const char* kName;
//   template <class H> void WatchRead(int fd, H* h);   // h->OnReadable(fd), level-triggered
//   void Unwatch(int fd);
//   void InitTimers(size_t n);                         // untimed preparation
//   void StartTimer(size_t i, int64_t delay_ns, Fn fn, void* arg);  // delay may be < 0
//   void CancelTimer(size_t i);
//   void Post(Fn fn, void* arg);                       // thread-safe
//   void Run();                                        // until Stop()
//   void Stop();                                       // from the loop thread
//   void PollOnce();                                   // one non-blocking iteration
//   int64_t WakeupsSent() const;                       // -1: not observable
//
// Timer resolution differs by library: libevent takes microseconds and libuv
// milliseconds, so a negative delay (already due) becomes zero there.

#ifndef IOLOOP_BENCH_ADAPTERS_ADAPTER_H_
#define IOLOOP_BENCH_ADAPTERS_ADAPTER_H_

#include <mutex>
#include <vector>

namespace ioloop::bench {

using Fn = void (*)(void*);

// BoundFn: a callback and its argument, as StartTimer() and Post() take them; Run()
// calls fn(arg). The libevent and libuv adapters keep one per timer slot.
struct BoundFn {
  Fn fn;
  void* arg;
  void Run() const { fn(arg); }
};

// PostQueue: the mutex-guarded callback queue the libevent, libuv and raw adapters
// use for Post() (ioloop has its own, AddCallback). Push() says whether the queue was
// empty; RunAll() swaps it out and runs it on the loop thread.
class PostQueue {
 public:
  bool Push(Fn fn, void* arg) {
    std::lock_guard<std::mutex> lock(mu_);
    posted_.push_back({fn, arg});
    return posted_.size() == 1;
  }
  void RunAll() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      running_.swap(posted_);
    }
    for (const BoundFn& e : running_) e.Run();
    running_.clear();
  }
  bool Empty() {
    std::lock_guard<std::mutex> lock(mu_);
    return posted_.empty();
  }

 private:
  std::mutex mu_;
  std::vector<BoundFn> posted_;
  std::vector<BoundFn> running_;
};

}  // namespace ioloop::bench

#endif  // IOLOOP_BENCH_ADAPTERS_ADAPTER_H_
