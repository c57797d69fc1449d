// InlineFunction<R(Args...), N>: a move-only owner of a callable, like
// absl::AnyInvocable, that keeps callables of up to N bytes inside itself.
//
// The loop stores every callback, timeout and handler it is given, at a high rate.
// InlineFunction lets each container pick its inline size (AnyInvocable's is fixed at
// 16 bytes), keeps trivially copyable callables (function pointers, lambdas capturing
// pointers and integers) on a path with no indirect call to move or destroy, and puts
// larger callables in blocks from base::RecyclingAllocator, so a steady stream of them
// does not call operator new either.
//
//   InlineFunction<void(), 48> f = [this, id] { Fire(id); };
//   f();
//
// Thread-safety: none (as any value type). Ownership: the InlineFunction owns its
// callable and destroys it when it is reset, assigned, or destroyed. Moving leaves the
// source empty. Calling an empty InlineFunction is a check failure (debug builds).
// The callable's move constructor must not throw; its destructor runs inside
// reset(), assignment and ~InlineFunction, and may do anything except touch this
// InlineFunction.

#ifndef IOLOOP_BASE_INLINE_FUNCTION_H_
#define IOLOOP_BASE_INLINE_FUNCTION_H_

#include <cstddef>
#include <cstring>
#include <new>
#include <type_traits>
#include <utility>

#include "base/check.h"
#include "base/recycling_allocator.h"

namespace ioloop::base {

template <typename Signature, size_t N>
class InlineFunction;

template <typename R, typename... Args, size_t N>
class InlineFunction<R(Args...), N> {
  static_assert(N >= sizeof(void*) && N % sizeof(void*) == 0, "N: a whole number of words");

 public:
  // kInlineSize: the largest callable kept inline.
  static constexpr size_t kInlineSize = N;

  // StoredInline<F>: whether a callable of type F is kept inside (no allocation).
  template <typename F>
  static constexpr bool StoredInline() {
    return sizeof(F) <= N && alignof(F) <= alignof(void*) &&
           std::is_nothrow_move_constructible_v<F>;
  }

  InlineFunction() noexcept = default;
  InlineFunction(std::nullptr_t) noexcept {}  // NOLINT: as std::function.

  template <typename F, typename D = std::decay_t<F>,
            typename = std::enable_if_t<!std::is_same_v<D, InlineFunction> &&
                                        !std::is_same_v<D, std::nullptr_t> &&
                                        std::is_invocable_r_v<R, D&, Args...>>>
  InlineFunction(F&& f) {  // NOLINT: implicit, as std::function.
    Construct<D>(std::forward<F>(f));
  }

  InlineFunction(InlineFunction&& other) noexcept { MoveFrom(other); }

  InlineFunction& operator=(InlineFunction&& other) noexcept {
    if (this != &other) {
      // The old callable is destroyed after this object is consistent again: its
      // destructor may reach back into whatever owns this InlineFunction.
      InlineFunction old(std::move(*this));
      MoveFrom(other);
    }
    return *this;
  }

  InlineFunction& operator=(std::nullptr_t) noexcept {
    reset();
    return *this;
  }

  ~InlineFunction() { Destroy(); }

  // reset() destroys the callable, leaving this empty before the destructor runs.
  void reset() noexcept { InlineFunction old(std::move(*this)); }

  // emplace() constructs a callable in place in an empty InlineFunction (a debug check),
  // saving the move of constructing one and assigning it. If the callable's
  // constructor throws, this stays empty.
  template <typename F, typename D = std::decay_t<F>>
  void emplace(F&& f) {
    IOLOOP_DCHECK(ops_ == nullptr, "InlineFunction::emplace: not empty");
    Construct<D>(std::forward<F>(f));
  }

  // ResetIfTrivial() empties this and returns true when the callable needs no
  // destructor (nothing user-defined runs); otherwise returns false and leaves it be,
  // for a caller that must choose when the destructor runs.
  bool ResetIfTrivial() noexcept {
    if (ops_ == nullptr || ops_->destroy == nullptr) {
      ops_ = nullptr;
      return true;
    }
    return false;
  }

  explicit operator bool() const noexcept { return ops_ != nullptr; }

  R operator()(Args... args) {
    IOLOOP_DCHECK(ops_ != nullptr, "InlineFunction: called while empty");
    return ops_->invoke(storage_, std::forward<Args>(args)...);
  }

 private:
  struct Ops {
    // Arguments by value: the signatures the loop uses take scalars, which then
    // travel in registers rather than through references to stack temporaries.
    R (*invoke)(void* storage, Args... args);
    // Moves the callable from `from` into `to` and destroys the one at `from`; null
    // when the bytes can simply be copied.
    void (*relocate)(void* to, void* from) noexcept;
    // Destroys the callable; null when there is nothing to do.
    void (*destroy)(void* storage) noexcept;
  };

  template <typename F>
  static F* InlinePtr(void* storage) {
    return std::launder(reinterpret_cast<F*>(storage));
  }
  template <typename F>
  static F* HeapPtr(void* storage) {
    return *reinterpret_cast<F**>(storage);
  }

  template <typename F>
  static constexpr bool kTrivial =
      std::is_trivially_copyable_v<F>&& std::is_trivially_destructible_v<F>;

  template <typename F>
  static constexpr Ops kInlineOps = {
      [](void* s, Args... args) -> R { return (*InlinePtr<F>(s))(std::forward<Args>(args)...); },
      kTrivial<F> ? nullptr
                  : +[](void* to, void* from) noexcept {
                      F* source = InlinePtr<F>(from);
                      ::new (to) F(std::move(*source));
                      source->~F();
                    },
      kTrivial<F> ? nullptr : +[](void* s) noexcept { InlinePtr<F>(s)->~F(); },
  };

  template <typename F>
  static constexpr Ops kHeapOps = {
      [](void* s, Args... args) -> R { return (*HeapPtr<F>(s))(std::forward<Args>(args)...); },
      nullptr,  // The pointer is copied.
      +[](void* s) noexcept {
        F* f = HeapPtr<F>(s);
        f->~F();
        RecyclingAllocator::Deallocate(f, sizeof(F));
      },
  };

  template <typename D, typename F>
  void Construct(F&& f) {
    if constexpr (std::is_pointer_v<D> || std::is_member_pointer_v<D>) {
      if (f == nullptr) return;  // A null function pointer makes an empty function.
    }
    if constexpr (StoredInline<D>()) {
      ::new (static_cast<void*>(storage_)) D(std::forward<F>(f));
      ops_ = &kInlineOps<D>;
    } else {
      void* block = RecyclingAllocator::Allocate(sizeof(D));
      try {
        ::new (block) D(std::forward<F>(f));
      } catch (...) {
        RecyclingAllocator::Deallocate(block, sizeof(D));
        throw;
      }
      *reinterpret_cast<D**>(storage_) = static_cast<D*>(block);
      ops_ = &kHeapOps<D>;
    }
  }

  void MoveFrom(InlineFunction& other) noexcept {
    ops_ = other.ops_;
    if (ops_ == nullptr) return;
    if (ops_->relocate == nullptr) {
      // Copies all N bytes, a fixed-size copy, though a smaller callable leaves some
      // of them unset: copying indeterminate bytes as unsigned char is allowed, and
      // GCC's warning about it is a false positive.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
      std::memcpy(storage_, other.storage_, N);
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
    } else {
      ops_->relocate(storage_, other.storage_);
    }
    other.ops_ = nullptr;
  }

  void Destroy() noexcept {
    if (ops_ != nullptr && ops_->destroy != nullptr) ops_->destroy(storage_);
    ops_ = nullptr;
  }

  const Ops* ops_ = nullptr;
  // Word-aligned (not max_align_t) so that the object is N + one word: a callable
  // needing more alignment goes to the heap.
  alignas(void*) unsigned char storage_[N];
};

}  // namespace ioloop::base

#endif  // IOLOOP_BASE_INLINE_FUNCTION_H_
