// Stack context: exception handlers that follow callbacks across the loop.
//
// A C++ port of Tornado's tornado.stack_context. An exception thrown by a callback
// normally has nowhere useful to go: the code that scheduled it has long returned.
// ExceptionStackContext installs a handler for the current scope; everything
// scheduled on an IOLoop while the scope is active (callbacks, timeouts, fd handlers)
// carries the scope's handlers along, and an exception it throws later, on the loop,
// reaches them.
//
//   {
//     ExceptionStackContext context([&](std::exception_ptr e) {
//       request.Fail(e);
//       return true;                           // handled; false passes it outwards
//     });
//     loop.AddTimeout(absl::Seconds(5), [] { throw std::runtime_error("late"); });
//   }
//
// Contexts nest; the innermost handler is asked first, and one returning false (or
// throwing) passes the exception to the next one out. An exception no handler takes
// goes to IOLoop::HandleCallbackException(). While a captured callback runs, its
// contexts are active again, so what it schedules inherits them.
//
// Cost: with no context active, capturing is a null pointer copy and running adds
// nothing; no allocation happens.
//
// Thread-safety: the active contexts are per thread. A captured StackContext may be
// run on another thread (the loop's) than the one that captured it.

#ifndef IOLOOP_IOLOOP_STACK_CONTEXT_H_
#define IOLOOP_IOLOOP_STACK_CONTEXT_H_

#include <exception>
#include <memory>
#include <utility>

#include "absl/functional/any_invocable.h"

namespace ioloop {

// ExceptionHandler returns true if it handled the exception.
using ExceptionHandler = absl::AnyInvocable<bool(std::exception_ptr)>;

namespace stack_context_internal {
struct Frame {
  ExceptionHandler handler;
  std::shared_ptr<Frame> parent;
};
using Chain = std::shared_ptr<Frame>;
Chain& Current();
// t_active mirrors Current() != nullptr in a trivially-destructible thread_local, so
// Capture() costs one TLS load when no context is active (the common case).
inline thread_local bool t_active = false;
// Swap() makes `chain` current and returns the previous one.
inline Chain Swap(Chain chain) {
  t_active = chain != nullptr;
  return std::exchange(Current(), std::move(chain));
}
}  // namespace stack_context_internal

// UnhandledException carries an exception that every handler of a captured context
// declined, out of StackContext::Run() or a Wrap()ped callable. The loop unwraps it
// and reports error() to HandleCallbackException(), skipping outer contexts: a
// callback wrapped where no context was active runs with none.
class UnhandledException : public std::exception {
 public:
  explicit UnhandledException(std::exception_ptr error) : error_(std::move(error)) {}
  const std::exception_ptr& error() const { return error_; }
  const char* what() const noexcept override {
    return "exception not handled by any stack context";
  }

 private:
  std::exception_ptr error_;
};

// StackContext is a captured set of active contexts (possibly none). Copyable.
class StackContext {
 public:
  StackContext() = default;

  // Capture() snapshots the contexts active on this thread.
  static StackContext Capture() {
    if (!stack_context_internal::t_active) return StackContext();
    return StackContext(stack_context_internal::Current());
  }

  // Active() is true when some context is active on this thread.
  static bool Active() { return stack_context_internal::t_active; }

  // empty() is true when no context was active at capture.
  bool empty() const { return chain_ == nullptr; }

  // Run() calls `f` with these contexts active (and only these). An exception `f`
  // throws is offered to the handlers, innermost first; if none handles it, Run()
  // throws UnhandledException. UnhandledException from a nested Run() passes through.
  template <typename F>
  void Run(F& f) const;

 private:
  explicit StackContext(stack_context_internal::Chain chain) : chain_(std::move(chain)) {}
  // Offers `error` to the chain; throws UnhandledException if nobody takes it.
  void Dispatch(std::exception_ptr error) const;

  stack_context_internal::Chain chain_;
};

// ExceptionStackContext makes `handler` active for the scope's lifetime. Scopes must
// end in the reverse order they began (the RAII discipline ensures it).
class ExceptionStackContext {
 public:
  explicit ExceptionStackContext(ExceptionHandler handler);
  ~ExceptionStackContext();
  ExceptionStackContext(const ExceptionStackContext&) = delete;
  ExceptionStackContext& operator=(const ExceptionStackContext&) = delete;

 private:
  stack_context_internal::Chain saved_;
};

// NullContext clears the active contexts for its scope: callbacks scheduled inside
// it carry none (use it for work that must not report to the current request).
class NullContext {
 public:
  NullContext();
  ~NullContext();
  NullContext(const NullContext&) = delete;
  NullContext& operator=(const NullContext&) = delete;

 private:
  stack_context_internal::Chain saved_;
};

// Wrap() binds `callback` to the contexts active now. When the result runs (on any
// loop, or called directly) exactly those contexts are active, whatever is active
// where it runs; an exception none of them handles leaves it as UnhandledException.
absl::AnyInvocable<void()> Wrap(absl::AnyInvocable<void()> callback);

// ---------------------------------------------------------------------------------

template <typename F>
void StackContext::Run(F& f) const {
  struct Restore {
    stack_context_internal::Chain saved;
    ~Restore() { stack_context_internal::Swap(std::move(saved)); }
  } restore{stack_context_internal::Swap(chain_)};
  try {
    f();
  } catch (const UnhandledException&) {
    throw;
  } catch (...) {
    Dispatch(std::current_exception());
  }
}

}  // namespace ioloop

#endif  // IOLOOP_IOLOOP_STACK_CONTEXT_H_
