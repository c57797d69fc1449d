// "raw": the physical limit the others are measured against. A minimal hand-written
// level-triggered epoll loop with the tricks the fast peers use: an fd-indexed watcher
// table, a std::vector binary heap whose timer records keep their heap position (O(1)
// to find, O(log n) to cancel), the time cached per iteration (read once after each
// poll and before running timers, as libuv's loop time), and an eventfd with a pending
// flag for cross-thread posts. No error handling beyond what the workloads need.

#ifndef IOLOOP_BENCH_ADAPTERS_RAW_ADAPTER_H_
#define IOLOOP_BENCH_ADAPTERS_RAW_ADAPTER_H_

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <vector>

#include "bench/adapters/adapter.h"

namespace ioloop::bench {

class RawAdapter {
 public:
  static constexpr const char* kName = "raw";

  RawAdapter() : epfd_(epoll_create1(EPOLL_CLOEXEC)), efd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = efd_;
    epoll_ctl(epfd_, EPOLL_CTL_ADD, efd_, &ev);
  }
  ~RawAdapter() {
    close(efd_);
    close(epfd_);
  }

  template <class H>
  void WatchRead(int fd, H* h) {
    if (static_cast<size_t>(fd) >= watchers_.size()) watchers_.resize(fd + 1);
    watchers_[fd] = {&Readable<H>, h};
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev);
  }
  void Unwatch(int fd) {
    watchers_[fd] = {};
    epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr);
  }

  void InitTimers(size_t n) {
    timers_.assign(n, {});
    heap_.clear();
    heap_.reserve(n);
  }
  void StartTimer(size_t i, int64_t delay_ns, Fn fn, void* arg) {
    timers_[i] = {fn, arg, 0};
    if (!now_valid_) {
      now_ = NowNs();
      now_valid_ = true;
    }
    heap_.push_back({now_ + delay_ns, seq_++, static_cast<uint32_t>(i)});
    Up(heap_.size() - 1);
  }
  void CancelTimer(size_t i) {
    const size_t at = timers_[i].pos;
    if (at >= heap_.size() || heap_[at].timer != i) return;
    heap_[at] = heap_.back();
    heap_.pop_back();
    if (at < heap_.size()) {
      timers_[heap_[at].timer].pos = at;
      Up(at);
      Down(timers_[heap_[at].timer].pos);
    }
  }

  void Post(Fn fn, void* arg) {
    posted_.Push(fn, arg);
    if (!pending_.exchange(true)) {
      wakeups_.fetch_add(1, std::memory_order_relaxed);
      const uint64_t one = 1;
      (void)!write(efd_, &one, sizeof one);
    }
  }

  void Run() {
    stopped_ = false;
    while (!stopped_) Iterate(true);
  }
  void Stop() { stopped_ = true; }
  void PollOnce() { Iterate(false); }
  int64_t WakeupsSent() const { return static_cast<int64_t>(wakeups_.load()); }

 private:
  struct Watcher {
    void (*call)(void*, int) = nullptr;
    void* h = nullptr;
  };
  struct Timer {
    Fn fn;
    void* arg;
    size_t pos;
  };
  struct Node {
    int64_t deadline;
    uint64_t seq;
    uint32_t timer;
    bool operator<(const Node& o) const {
      return deadline < o.deadline || (deadline == o.deadline && seq < o.seq);
    }
  };
  template <class H>
  static void Readable(void* h, int fd) {
    static_cast<H*>(h)->OnReadable(fd);
  }
  static int64_t NowNs() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
  }
  void Place(size_t i, const Node& n) {
    heap_[i] = n;
    timers_[n.timer].pos = i;
  }
  void Up(size_t i) {
    const Node n = heap_[i];
    while (i > 0 && n < heap_[(i - 1) / 2]) {
      Place(i, heap_[(i - 1) / 2]);
      i = (i - 1) / 2;
    }
    Place(i, n);
  }
  void Down(size_t i) {
    const Node n = heap_[i];
    for (size_t c; (c = 2 * i + 1) < heap_.size(); i = c) {
      if (c + 1 < heap_.size() && heap_[c + 1] < heap_[c]) ++c;
      if (!(heap_[c] < n)) break;
      Place(i, heap_[c]);
    }
    Place(i, n);
  }

  void Iterate(bool block) {
    posted_.RunAll();
    if (!heap_.empty()) {
      const int64_t now = now_ = NowNs();
      now_valid_ = true;
      const uint64_t limit = seq_;
      while (!heap_.empty() && heap_[0].deadline <= now && heap_[0].seq < limit) {
        const Timer t = timers_[heap_[0].timer];
        heap_[0] = heap_.back();
        heap_.pop_back();
        if (!heap_.empty()) {
          timers_[heap_[0].timer].pos = 0;
          Down(0);
        }
        t.fn(t.arg);
      }
    }
    if (stopped_) return;
    int timeout = -1;
    if (!block) {
      timeout = 0;
    } else if (!posted_.Empty()) {
      timeout = 0;
    }
    if (timeout != 0 && !heap_.empty()) {
      const int64_t wait = heap_[0].deadline - NowNs();
      timeout = wait <= 0 ? 0 : static_cast<int>((wait + 999999) / 1000000);
    }
    epoll_event events[256];
    const int n = epoll_wait(epfd_, events, 256, timeout);
    now_valid_ = false;  // Read again, lazily, by the first StartTimer() after the poll.
    for (int i = 0; i < n; ++i) {
      const int fd = events[i].data.fd;
      if (fd == efd_) {
        uint64_t v;
        (void)!read(efd_, &v, sizeof v);
        pending_.store(false);
        continue;
      }
      const Watcher& w = watchers_[fd];
      if (w.call) w.call(w.h, fd);
    }
  }

  const int epfd_;
  const int efd_;
  bool stopped_ = false;
  int64_t now_ = 0;         // The loop time StartTimer() counts from...
  bool now_valid_ = false;  // ...once read in this iteration.
  std::vector<Watcher> watchers_;
  std::vector<Timer> timers_;
  std::vector<Node> heap_;
  uint64_t seq_ = 0;
  PostQueue posted_;
  std::atomic<bool> pending_{false};
  std::atomic<int64_t> wakeups_{0};
};

}  // namespace ioloop::bench

#endif  // IOLOOP_BENCH_ADAPTERS_RAW_ADAPTER_H_
