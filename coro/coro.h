// Tornado's `gen` as C++20 coroutines on ioloop::IOLoop.
//
//   coro::Task<std::string> Fetch(...);
//   coro::Task<> Main() {
//     co_await coro::Sleep(absl::Milliseconds(10));
//     std::string body = co_await coro::WithTimeout(absl::Seconds(1), Fetch(...));
//   }
//   coro::Spawn(loop, Main());                        // fire and forget, like
//   IOLoop.spawn_callback int n = coro::RunSync(loop, Count(), absl::Seconds(5));   // Tornado's
//   run_sync
//
// Layering: built on IOLoop's public callback API; the loop knows nothing about
// coroutines and pays nothing for them. Stream awaitables are in coro/stream.h.
//
// Resumption: every awaitable here resumes its task from a loop callback (a timeout, a
// queued callback or an fd handler) on the task's loop, never inline inside whoever
// completed it. `Sleep(0)`, a negative `Sleep`, `SleepUntil(past)` and `Yield()` always
// give the loop a turn. A task runs only on its loop's thread.
//
// Stack contexts: the stack context (ioloop/stack_context.h) active at Spawn() or
// RunSync() is active whenever the task runs, across every suspension, whatever context
// completed the awaited operation. An ExceptionStackContext or NullContext scope must
// not span a co_await (the scope is per thread, not per task).
//
// Cancellation and shutdown: a suspended task is destroyed, never resumed, when
//   - its loop is closed (IOLoop::Close() or ~IOLoop): every task Spawn()ed on it, and
//     every task those await, is destroyed;
//   - WithTimeout() expires: the inner task is destroyed;
//   - RunSync()'s timeout expires: its task is destroyed.
// Destroying a frame runs its locals' destructors (which may call back into the loop:
// AddTimeout, RemoveTimeout, AddCallback, RemoveHandler, Spawn, ...) but not its
// catch blocks. An awaitable destroyed while it waits undoes its registration: a
// pending Sleep removes its timeout, a pending WaitReadable/WaitWritable removes its
// handler (it never closes the fd), a pending stream read closes the stream (see
// coro/stream.h).
//
// Errors: an exception that leaves a task goes to its awaiter; out of a Spawn()ed task
// it goes to the stack context active at Spawn(), else to the loop's
// HandleCallbackException(); out of a RunSync() task RunSync rethrows it.

#ifndef IOLOOP_CORO_CORO_H_
#define IOLOOP_CORO_CORO_H_

#include <coroutine>
#include <exception>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "backends/events.h"
#include "coro/internal/completion.h"
#include "coro/internal/root.h"
#include "coro/task.h"
#include "ioloop/io_loop.h"

namespace ioloop::coro {

// TimeoutError: thrown by WithTimeout() when the inner task did not finish in time,
// and by RunSync() when its timeout expired (Tornado's gen.TimeoutError).
class TimeoutError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// LoopStoppedError: thrown by RunSync() when the loop stopped (Stop() or Close() by
// someone else) before the task finished; the task was destroyed.
class LoopStoppedError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace coro_internal {

// RootTask: the coroutine at the root of a Spawn()ed or RunSync() task; its promise
// holds the RootState.
class RootTask {
 public:
  struct promise_type {
    RootState state;
    static void* operator new(size_t size) { return AllocateFrame(size); }
    static void operator delete(void* block, size_t size) noexcept { FreeFrame(block, size); }
    RootTask get_return_object() noexcept {
      state.frame = std::coroutine_handle<promise_type>::from_promise(*this);
      return RootTask{&state};
    }
    std::suspend_always initial_suspend() noexcept { return {}; }
    struct FinalAwaiter {
      RootState* state;
      bool await_ready() noexcept { return false; }
      void await_suspend(std::coroutine_handle<>) noexcept { state->done = true; }
      void await_resume() noexcept {}
    };
    FinalAwaiter final_suspend() noexcept { return {&state}; }
    void unhandled_exception() noexcept { state.error = std::current_exception(); }
    void return_void() noexcept {}
  };
  RootState* state;
};

inline RootTask SpawnBody(Task<> task) { co_await std::move(task); }

template <typename T>
RootTask RunSyncBody(Task<T> task, std::optional<T>* out) {
  out->emplace(co_await std::move(task));
}
inline RootTask RunSyncBody(Task<> task, std::optional<bool>* out) {
  co_await std::move(task);
  out->emplace(true);
}

void StartRoot(IOLoop& loop, RootState* root);
void RunRootSync(IOLoop& loop, RootState* root, absl::Duration timeout, SyncStatus& status);

}  // namespace coro_internal

// Spawn starts `task` on `loop`: it first runs from a callback on the loop's next
// iteration (Tornado's spawn_callback), with the stack context active here. The loop
// owns the task from now on: it runs until it finishes or the loop is closed. An
// exception that leaves it goes to the stack context active here, else to the loop's
// HandleCallbackException(). Thread-safe (like AddCallback); the task then runs on the
// loop's thread. An empty Task is a check failure.
void Spawn(IOLoop& loop, Task<> task);

// RunSync runs `loop` (Start()) until `task` finishes, then stops it and returns the
// task's value or rethrows its exception (Tornado's run_sync). When `timeout` expires
// first, the task is destroyed (unlike Tornado, which leaves it running) and
// TimeoutError is thrown; when the loop stops for another reason first, the task is
// destroyed and LoopStoppedError is thrown. Must be called on the loop's thread while
// the loop is not running (Start() on a running loop is a check failure).
template <typename T>
T RunSync(IOLoop& loop, Task<T> task, absl::Duration timeout = absl::InfiniteDuration()) {
  IOLOOP_CHECK(task.Valid(), "coro::RunSync: empty Task");
  using Stored = std::conditional_t<std::is_void_v<T>, bool, T>;
  std::optional<Stored> out;
  coro_internal::SyncStatus status;
  coro_internal::RootTask root = coro_internal::RunSyncBody(std::move(task), &out);
  coro_internal::RunRootSync(loop, root.state, timeout, status);
  if constexpr (!std::is_void_v<T>) return std::move(*out);
}

namespace coro_internal {

// TimerAwaiter: Sleep and SleepUntil.
class TimerAwaiter {
 public:
  TimerAwaiter(absl::Time deadline, absl::Duration delay, bool absolute)
      : deadline_(deadline), delay_(delay), absolute_(absolute) {}
  TimerAwaiter(const TimerAwaiter&) = delete;
  TimerAwaiter& operator=(const TimerAwaiter&) = delete;
  ~TimerAwaiter() {
    if (pending_) loop_->RemoveTimeout(handle_);
  }
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h);
  void await_resume() const noexcept {}

 private:
  struct Fire {
    TimerAwaiter* self;
    void operator()() const {
      self->pending_ = false;
      Resume(self->root_, self->handle_to_resume_);
    }
  };
  absl::Time deadline_;
  absl::Duration delay_;
  bool absolute_;
  bool pending_ = false;
  CompletionHolder<bool> turn_;  // Used instead of a timeout when already due.
  IOLoop* loop_ = nullptr;
  RootState* root_ = nullptr;
  std::coroutine_handle<> handle_to_resume_;
  TimeoutHandle handle_;
};

// YieldAwaiter: a queued callback (which cannot be removed, hence the Completion).
class YieldAwaiter {
 public:
  YieldAwaiter() = default;
  YieldAwaiter(const YieldAwaiter&) = delete;
  YieldAwaiter& operator=(const YieldAwaiter&) = delete;
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h);
  void await_resume() const noexcept {}

 private:
  CompletionHolder<bool> completion_;
};

// FdAwaiter: WaitReadable and WaitWritable.
class FdAwaiter {
 public:
  FdAwaiter(int fd, EventMask events) : fd_(fd), events_(events) {}
  FdAwaiter(const FdAwaiter&) = delete;
  FdAwaiter& operator=(const FdAwaiter&) = delete;
  ~FdAwaiter() {
    if (pending_) loop_->RemoveHandler(fd_).IgnoreError();
  }
  bool await_ready() const noexcept { return false; }
  bool await_suspend(std::coroutine_handle<> h);
  absl::StatusOr<EventMask> await_resume() { return std::move(result_); }

 private:
  int fd_;
  EventMask events_;
  bool pending_ = false;
  IOLoop* loop_ = nullptr;
  RootState* root_ = nullptr;
  std::coroutine_handle<> handle_to_resume_;
  absl::StatusOr<EventMask> result_;
};

// TimeoutAwaiter: WithTimeout's race between the inner task and a timeout.
template <typename T>
class TimeoutAwaiter {
 public:
  TimeoutAwaiter(absl::Duration timeout, Task<T> inner)
      : timeout_(timeout), inner_(std::move(inner)) {}
  TimeoutAwaiter(const TimeoutAwaiter&) = delete;
  TimeoutAwaiter& operator=(const TimeoutAwaiter&) = delete;
  ~TimeoutAwaiter() {
    Disarm();
    if (handle_inner_) std::exchange(handle_inner_, nullptr).destroy();
  }
  bool await_ready() const noexcept { return false; }
  bool await_suspend(std::coroutine_handle<> h) {
    IOLOOP_CHECK(inner_.Valid(), "coro::WithTimeout: empty Task");
    loop_ = &CurrentLoop("coro::WithTimeout");
    root_ = CurrentRoot();
    outer_ = h;
    handle_ = loop_->AddTimeout(timeout_, Expire{this});
    armed_ = true;
    handle_inner_ = inner_.Release();
    if (PromiseBase::Start(handle_inner_, h)) return false;
    return true;
  }
  T await_resume() {
    Disarm();
    if (expired_) {
      throw TimeoutError(
          absl::StrCat("coro::WithTimeout: not finished within ", absl::FormatDuration(timeout_)));
    }
    struct Destroy {
      std::coroutine_handle<Promise<T>>& h;
      ~Destroy() { std::exchange(h, nullptr).destroy(); }
    } destroy{handle_inner_};
    return handle_inner_.promise().TakeResult();
  }

 private:
  struct Expire {
    TimeoutAwaiter* self;
    void operator()() const {
      TimeoutAwaiter* s = self;
      s->armed_ = false;
      s->expired_ = true;
      Enter(s->root_, [s] {
        // Cancel the inner work first (its frames' destructors undo what it waits on),
        // then let the awaiter see the timeout.
        if (s->handle_inner_) std::exchange(s->handle_inner_, nullptr).destroy();
        s->outer_.resume();
      });
    }
  };
  void Disarm() {
    if (armed_) {
      armed_ = false;
      loop_->RemoveTimeout(handle_);
    }
  }

  absl::Duration timeout_;
  Task<T> inner_;
  std::coroutine_handle<Promise<T>> handle_inner_;
  IOLoop* loop_ = nullptr;
  RootState* root_ = nullptr;
  std::coroutine_handle<> outer_;
  TimeoutHandle handle_;
  bool armed_ = false;
  bool expired_ = false;
};

}  // namespace coro_internal

// Sleep suspends the calling task for `delay` (Tornado's gen.sleep), resuming it from a
// loop timeout. A zero or negative delay still gives the loop a turn, as Yield() does:
// the task resumes from a queued callback, after every callback queued before it. Awaited outside
// a Spawn()/RunSync() task: a check failure. Destroying the task while it sleeps
// removes the timeout.
inline coro_internal::TimerAwaiter Sleep(absl::Duration delay) {
  return coro_internal::TimerAwaiter(absl::InfinitePast(), delay, /*absolute=*/false);
}

// SleepUntil suspends the calling task until the loop's clock reads `deadline`
// (IOLoop::Time()); a past deadline gives the loop a turn, like Sleep(0).
inline coro_internal::TimerAwaiter SleepUntil(absl::Time deadline) {
  return coro_internal::TimerAwaiter(deadline, absl::ZeroDuration(), /*absolute=*/true);
}

// Yield lets every callback queued before it run, then resumes the calling task from a
// queued callback of its own (IOLoop::AddCallback; Tornado's gen.moment).
inline coro_internal::YieldAwaiter Yield() { return coro_internal::YieldAwaiter(); }

// WaitReadable suspends the calling task until `fd` is readable (or has an error or
// hang-up), by adding a handler for it on the task's loop; `co_await` gives the events
// seen (kRead and/or kError). The handler is removed before the task resumes, and
// when the task is destroyed while waiting; the fd is never closed.
// An fd that already has a handler on the loop (another task waiting on it, or an
// IOStream): the await fails at once with the loop's AlreadyExists status, without
// suspending. Other AddHandler errors (a negative fd, one the poller cannot hold) are
// returned the same way.
inline coro_internal::FdAwaiter WaitReadable(int fd) { return coro_internal::FdAwaiter(fd, kRead); }

// WaitWritable: WaitReadable for writability (events seen: kWrite and/or kError).
inline coro_internal::FdAwaiter WaitWritable(int fd) {
  return coro_internal::FdAwaiter(fd, kWrite);
}

// WithTimeout awaits `task`, giving up after `timeout` (Tornado's gen.with_timeout,
// except that the inner task is cancelled: its frame is destroyed at expiry, undoing
// what it waits on). Yields the task's value, rethrows its exception, or throws
// TimeoutError on expiry. The inner task runs at once, in the awaiting task; its
// result wins if it finishes before the expiry timeout runs.
template <typename T>
Task<T> WithTimeout(absl::Duration timeout, Task<T> task) {
  co_return co_await coro_internal::TimeoutAwaiter<T>(timeout, std::move(task));
}

}  // namespace ioloop::coro

#endif  // IOLOOP_CORO_CORO_H_
