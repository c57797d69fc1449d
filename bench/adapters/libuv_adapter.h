// libuv 1.44 behind the adapter contract: readiness through uv_poll_t, uv_timer_t
// timers, and a mutex-guarded queue announced with uv_async_send() (which coalesces
// wake-ups itself) for cross-thread posts.

#ifndef IOLOOP_BENCH_ADAPTERS_LIBUV_ADAPTER_H_
#define IOLOOP_BENCH_ADAPTERS_LIBUV_ADAPTER_H_

#include <uv.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "bench/adapters/adapter.h"

namespace ioloop::bench {

class LibuvAdapter {
 public:
  static constexpr const char* kName = "libuv";

  LibuvAdapter() {
    uv_loop_init(&loop_);
    uv_async_init(&loop_, &async_, &OnAsync);
    async_.data = this;
  }
  ~LibuvAdapter() {
    for (auto& p : polls_) {
      if (p) uv_close(reinterpret_cast<uv_handle_t*>(p.release()), &FreePoll);
    }
    for (uv_timer_t& t : timers_) uv_close(reinterpret_cast<uv_handle_t*>(&t), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&async_), nullptr);
    uv_run(&loop_, UV_RUN_DEFAULT);  // Completes the closes.
    uv_loop_close(&loop_);
  }

  template <class H>
  void WatchRead(int fd, H* h) {
    if (static_cast<size_t>(fd) >= polls_.size()) polls_.resize(fd + 1);
    polls_[fd] = std::make_unique<uv_poll_t>();
    uv_poll_init(&loop_, polls_[fd].get(), fd);
    polls_[fd]->data = h;
    uv_poll_start(polls_[fd].get(), UV_READABLE, &Readable<H>);
  }
  void Unwatch(int fd) {
    uv_poll_stop(polls_[fd].get());
    uv_close(reinterpret_cast<uv_handle_t*>(polls_[fd].release()), &FreePoll);
  }

  void InitTimers(size_t n) {
    for (uv_timer_t& t : timers_) uv_close(reinterpret_cast<uv_handle_t*>(&t), nullptr);
    uv_run(&loop_, UV_RUN_NOWAIT);
    timers_ = std::vector<uv_timer_t>(n);
    slots_.assign(n, {});
    for (size_t i = 0; i < n; ++i) {
      uv_timer_init(&loop_, &timers_[i]);
      timers_[i].data = &slots_[i];
      uv_unref(reinterpret_cast<uv_handle_t*>(&timers_[i]));  // Idle timers keep nothing alive.
    }
  }
  void StartTimer(size_t i, int64_t delay_ns, Fn fn, void* arg) {
    slots_[i] = {fn, arg};
    const uint64_t ms = delay_ns > 0 ? static_cast<uint64_t>((delay_ns + 999999) / 1000000) : 0;
    uv_timer_start(&timers_[i], &OnTimer, ms, 0);
  }
  void CancelTimer(size_t i) { uv_timer_stop(&timers_[i]); }

  void Post(Fn fn, void* arg) {
    posted_.Push(fn, arg);
    uv_async_send(&async_);  // Coalesces by itself.
  }

  void Run() {
    stopped_ = false;
    while (!stopped_) uv_run(&loop_, UV_RUN_ONCE);
  }
  void Stop() {
    stopped_ = true;
    uv_stop(&loop_);
  }
  void PollOnce() { uv_run(&loop_, UV_RUN_NOWAIT); }
  int64_t WakeupsSent() const { return -1; }

 private:
  template <class H>
  static void Readable(uv_poll_t* p, int, int) {
    uv_os_fd_t fd;
    uv_fileno(reinterpret_cast<uv_handle_t*>(p), &fd);
    static_cast<H*>(p->data)->OnReadable(fd);
  }
  static void OnTimer(uv_timer_t* t) { static_cast<const BoundFn*>(t->data)->Run(); }
  static void OnAsync(uv_async_t* a) { static_cast<LibuvAdapter*>(a->data)->posted_.RunAll(); }
  static void FreePoll(uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); }

  uv_loop_t loop_;
  uv_async_t async_;
  bool stopped_ = false;
  std::vector<std::unique_ptr<uv_poll_t>> polls_;
  std::vector<uv_timer_t> timers_;
  std::vector<BoundFn> slots_;
  PostQueue posted_;
};

}  // namespace ioloop::bench

#endif  // IOLOOP_BENCH_ADAPTERS_LIBUV_ADAPTER_H_
