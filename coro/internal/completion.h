// Internal: a completion shared between an awaiter and the callback it hands to code
// that may call it late, or never, or destroy it at any time (IOLoop::AddCallback,
// IOStream operations): a weak link, so that neither side can dangle.
//
// The block comes from the per-thread frame allocator: no allocation in steady state.
// Loop thread only.

#ifndef IOLOOP_CORO_INTERNAL_COMPLETION_H_
#define IOLOOP_CORO_INTERNAL_COMPLETION_H_

#include <coroutine>
#include <new>
#include <optional>
#include <utility>

#include "coro/internal/frame_allocator.h"
#include "coro/internal/root.h"

namespace ioloop::coro::coro_internal {

template <typename R>
struct Completion {
  int refs = 2;          // The awaiter's CompletionHolder and the callback.
  bool waiting = true;   // The awaiter is alive and has not been resumed.
  bool fired = false;    // The callback was called.
  bool dropped = false;  // The callback was destroyed without being called.
  RootState* root = nullptr;
  std::coroutine_handle<> resume;
  std::optional<R> result;

  void Release() {
    if (--refs == 0) {
      this->~Completion();
      FreeFrame(this, sizeof(Completion));
    }
  }
};

// CompletionCallback: the callable side. Calling it stores the result and resumes the
// awaiter (if still waiting) through Enter(); destroying it uncalled marks `dropped`.
template <typename R>
class CompletionCallback {
 public:
  explicit CompletionCallback(Completion<R>* c) : c_(c) {}
  CompletionCallback(CompletionCallback&& other) noexcept : c_(std::exchange(other.c_, nullptr)) {}
  CompletionCallback& operator=(CompletionCallback&&) = delete;
  ~CompletionCallback() {
    if (c_ != nullptr) {
      if (!c_->fired) c_->dropped = true;
      c_->Release();
    }
  }
  template <typename... A>
  void operator()(A&&... args) {
    Completion<R>* c = c_;
    c->fired = true;
    if (!c->waiting) return;
    c->waiting = false;
    c->result.emplace(std::forward<A>(args)...);
    Resume(c->root, c->resume);  // `this` may be gone after this; `c` is not touched.
  }

 private:
  Completion<R>* c_;
};

// CompletionHolder: the awaiter side.
template <typename R>
class CompletionHolder {
 public:
  CompletionHolder() = default;
  CompletionHolder(const CompletionHolder&) = delete;
  CompletionHolder& operator=(const CompletionHolder&) = delete;
  ~CompletionHolder() {
    if (c_ != nullptr) {
      c_->waiting = false;
      c_->Release();
    }
  }
  CompletionCallback<R> Arm(RootState* root, std::coroutine_handle<> resume) {
    c_ = new (AllocateFrame(sizeof(Completion<R>))) Completion<R>();
    c_->root = root;
    c_->resume = resume;
    return CompletionCallback<R>(c_);
  }
  // Pending: armed, and the callback neither called nor dropped.
  bool Pending() const { return c_ != nullptr && !c_->fired && !c_->dropped; }
  bool Dropped() const { return c_ != nullptr && c_->dropped; }
  bool HasResult() const { return c_ != nullptr && c_->result.has_value(); }
  R Take() { return std::move(*c_->result); }

 private:
  Completion<R>* c_ = nullptr;
};

}  // namespace ioloop::coro::coro_internal

#endif  // IOLOOP_CORO_INTERNAL_COMPLETION_H_
