// libevent 2.1 behind the adapter contract: persistent read events, evtimer timers,
// and a mutex-guarded queue announced with event_active() for cross-thread posts.

#ifndef IOLOOP_BENCH_ADAPTERS_LIBEVENT_ADAPTER_H_
#define IOLOOP_BENCH_ADAPTERS_LIBEVENT_ADAPTER_H_

#include <event2/event.h>
#include <event2/event_struct.h>  // struct event by value, for evtimer_assign()
#include <event2/thread.h>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <utility>
#include <vector>

#include "bench/adapters/adapter.h"

namespace ioloop::bench {

class LibeventAdapter {
 public:
  static constexpr const char* kName = "libevent";

  LibeventAdapter() {
    static const int threads_ready = evthread_use_pthreads();
    (void)threads_ready;
    base_ = event_base_new();
    post_event_ = event_new(base_, -1, EV_PERSIST, &OnPosted, this);
    event_add(post_event_, nullptr);
  }
  ~LibeventAdapter() {
    for (event* e : watchers_) {
      if (e) event_free(e);
    }
    for (event& t : timers_) event_del(&t);
    event_free(post_event_);
    event_base_free(base_);
  }

  template <class H>
  void WatchRead(int fd, H* h) {
    if (static_cast<size_t>(fd) >= watchers_.size()) watchers_.resize(fd + 1, nullptr);
    watchers_[fd] = event_new(base_, fd, EV_READ | EV_PERSIST, &Readable<H>, h);
    event_add(watchers_[fd], nullptr);
  }
  void Unwatch(int fd) {
    event_free(watchers_[fd]);
    watchers_[fd] = nullptr;
  }

  void InitTimers(size_t n) {
    timers_ = std::vector<event>(n);
    slots_.assign(n, {});
  }
  void StartTimer(size_t i, int64_t delay_ns, Fn fn, void* arg) {
    slots_[i] = {fn, arg};
    evtimer_assign(&timers_[i], base_, &OnTimer, &slots_[i]);
    const int64_t us = delay_ns > 0 ? delay_ns / 1000 : 0;
    timeval tv = {static_cast<time_t>(us / 1000000), static_cast<suseconds_t>(us % 1000000)};
    event_add(&timers_[i], &tv);
  }
  void CancelTimer(size_t i) { event_del(&timers_[i]); }

  void Post(Fn fn, void* arg) {
    posted_.Push(fn, arg);
    event_active(post_event_, EV_READ, 0);
  }

  void Run() { event_base_loop(base_, EVLOOP_NO_EXIT_ON_EMPTY); }
  void Stop() { event_base_loopbreak(base_); }
  void PollOnce() { event_base_loop(base_, EVLOOP_NONBLOCK | EVLOOP_ONCE); }
  int64_t WakeupsSent() const { return -1; }

 private:
  template <class H>
  static void Readable(evutil_socket_t fd, short, void* h) {
    static_cast<H*>(h)->OnReadable(static_cast<int>(fd));
  }
  static void OnTimer(evutil_socket_t, short, void* slot) {
    static_cast<const BoundFn*>(slot)->Run();
  }
  static void OnPosted(evutil_socket_t, short, void* self) {
    static_cast<LibeventAdapter*>(self)->posted_.RunAll();
  }

  event_base* base_;
  event* post_event_;
  std::vector<event*> watchers_;
  std::vector<event> timers_;
  std::vector<BoundFn> slots_;
  PostQueue posted_;
};

}  // namespace ioloop::bench

#endif  // IOLOOP_BENCH_ADAPTERS_LIBEVENT_ADAPTER_H_
