// coro::Task<T>: a lazily started, move-only C++20 coroutine that is awaited once.
//
//   coro::Task<int> Answer() { co_await coro::Sleep(absl::Milliseconds(1)); co_return 42; }
//   coro::Task<> Main() { int x = co_await Answer(); ... }
//
// A Task does nothing until it is awaited (co_await) or handed to coro::Spawn() /
// coro::RunSync() (coro/coro.h), even when it is created inside a running task. The
// value given to co_return is what the awaiter gets; an exception that leaves the task
// is stored and rethrown in the awaiter, at its co_await.
//
// Awaiting a Task runs it at once on the awaiter's stack until it first suspends. When
// it finishes without suspending, the awaiter continues without suspending either (no
// stack is used up: 100,000 such awaits in a loop are fine, under any compiler and
// optimisation level); when it finishes later, its final suspend point transfers
// control straight to the awaiter (symmetric transfer).
//
// Ownership and lifetime: a Task owns its coroutine frame; destroying a Task that has
// not finished destroys its frame without resuming it (destructors of the frame's
// locals run; its catch blocks do not). A frame's parameters are copied or moved into
// it, but a reference parameter stays a reference: the caller must keep the referent
// alive until the Task finishes or is destroyed (pass by value what a spawned task
// keeps). Frames come from a per-thread recycling allocator
// (coro/internal/frame_allocator.h).
//
// Thread-safety: a Task is used by one thread at a time; awaiting one resumes on the
// loop thread of the task that awaits it.

#ifndef IOLOOP_CORO_TASK_H_
#define IOLOOP_CORO_TASK_H_

#include <coroutine>
#include <cstddef>
#include <exception>
#include <optional>
#include <type_traits>
#include <utility>

#include "base/check.h"
#include "coro/internal/frame_allocator.h"

namespace ioloop::coro {

template <typename T = void>
class Task;

namespace coro_internal {

// PromiseBase: what every Task's promise shares, independent of the value type.
class PromiseBase {
 public:
  static void* operator new(size_t size) { return AllocateFrame(size); }
  static void operator delete(void* block, size_t size) noexcept { FreeFrame(block, size); }

  std::suspend_always initial_suspend() noexcept { return {}; }

  struct FinalAwaiter {
    bool await_ready() noexcept { return false; }
    template <typename P>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<P> self) noexcept {
      PromiseBase& p = self.promise();
      // Finished inside the awaiter's await_suspend: return to it, it continues inline.
      if (p.inline_phase_ || !p.continuation_) return std::noop_coroutine();
      return p.continuation_;
    }
    void await_resume() noexcept {}
  };
  FinalAwaiter final_suspend() noexcept { return {}; }

  void unhandled_exception() noexcept { error_ = std::current_exception(); }

  // Start: runs the task on this stack until it suspends or finishes; `continuation`
  // is resumed when it finishes later. Returns true if it already finished.
  template <typename P>
  static bool Start(std::coroutine_handle<P> self, std::coroutine_handle<> continuation) {
    PromiseBase& p = self.promise();
    p.continuation_ = continuation;
    p.inline_phase_ = true;
    self.resume();
    if (self.done()) return true;
    p.inline_phase_ = false;
    return false;
  }

  void RethrowIfFailed() {
    if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
  }

 private:
  std::coroutine_handle<> continuation_;
  std::exception_ptr error_;
  bool inline_phase_ = false;
};

template <typename T>
class Promise : public PromiseBase {
 public:
  Task<T> get_return_object() noexcept;
  template <typename U = T>
  void return_value(U&& value) noexcept(std::is_nothrow_constructible_v<T, U&&>) {
    value_.emplace(std::forward<U>(value));
  }
  T TakeResult() {
    RethrowIfFailed();
    IOLOOP_CHECK(value_.has_value(), "coro::Task: result taken twice");
    return std::move(*value_);
  }

 private:
  std::optional<T> value_;
};

template <>
class Promise<void> : public PromiseBase {
 public:
  Task<void> get_return_object() noexcept;
  void return_void() noexcept {}
  void TakeResult() { RethrowIfFailed(); }
};

}  // namespace coro_internal

// Task<T>: see the file comment. Move-only; awaited at most once (`co_await
// std::move(task)` or `co_await MakeTask()`); awaiting an empty or already awaited
// Task is a check failure.
template <typename T>
class [[nodiscard]] Task {
 public:
  using promise_type = coro_internal::Promise<T>;
  using Handle = std::coroutine_handle<promise_type>;
  using value_type = T;

  Task() = default;
  Task(Task&& other) noexcept
      : handle_(std::exchange(other.handle_, nullptr)),
        awaited_(std::exchange(other.awaited_, false)) {}
  Task& operator=(Task&& other) noexcept {
    if (this != &other) {
      Reset();
      handle_ = std::exchange(other.handle_, nullptr);
      awaited_ = std::exchange(other.awaited_, false);
    }
    return *this;
  }
  Task(const Task&) = delete;
  Task& operator=(const Task&) = delete;
  ~Task() { Reset(); }

  // Valid: true while this Task holds a frame (not moved from, not yet awaited).
  bool Valid() const { return handle_ != nullptr; }

  struct Awaiter {
    Handle handle;
    bool await_ready() const noexcept { return false; }
    bool await_suspend(std::coroutine_handle<> awaiter) {
      return !coro_internal::PromiseBase::Start(handle, awaiter);
    }
    T await_resume() { return handle.promise().TakeResult(); }
  };

  // co_await: starts the task; the frame stays owned by this Task object (it is
  // destroyed with it, after the awaiter got the result).
  Awaiter operator co_await() && {
    IOLOOP_CHECK(handle_ != nullptr, "coro::Task awaited twice, or after it was moved from");
    IOLOOP_CHECK(!awaited_, "coro::Task awaited twice");
    awaited_ = true;
    return Awaiter{handle_};
  }

  // Release: hands over the frame (for Spawn/RunSync/WithTimeout). Internal use.
  Handle Release() { return std::exchange(handle_, nullptr); }

 private:
  friend class coro_internal::Promise<T>;
  explicit Task(Handle handle) : handle_(handle) {}
  void Reset() {
    if (handle_) std::exchange(handle_, nullptr).destroy();
  }

  Handle handle_;
  bool awaited_ = false;
};

namespace coro_internal {
template <typename T>
Task<T> Promise<T>::get_return_object() noexcept {
  return Task<T>(Task<T>::Handle::from_promise(*this));
}
inline Task<void> Promise<void>::get_return_object() noexcept {
  return Task<void>(Task<void>::Handle::from_promise(*this));
}
}  // namespace coro_internal

}  // namespace ioloop::coro

#endif  // IOLOOP_CORO_TASK_H_
