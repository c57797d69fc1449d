#include "ioloop/stack_context.h"

namespace ioloop {
namespace stack_context_internal {

Chain& Current() {
  thread_local Chain chain;
  return chain;
}

}  // namespace stack_context_internal

using stack_context_internal::Chain;
using stack_context_internal::Current;
using stack_context_internal::Frame;
using stack_context_internal::Swap;

void StackContext::Dispatch(std::exception_ptr error) const {
  for (Frame* frame = chain_.get(); frame != nullptr; frame = frame->parent.get()) {
    // A handler runs with only the contexts outside it active, as in Tornado.
    Chain saved = Swap(frame->parent);
    bool handled = false;
    try {
      handled = frame->handler(error);
    } catch (...) {
      error = std::current_exception();  // A handler that throws passes the new error on.
    }
    Swap(std::move(saved));
    if (handled) return;
  }
  throw UnhandledException(error);
}

ExceptionStackContext::ExceptionStackContext(ExceptionHandler handler) : saved_(Current()) {
  Swap(std::make_shared<Frame>(Frame{std::move(handler), saved_}));
}

ExceptionStackContext::~ExceptionStackContext() { Swap(std::move(saved_)); }

NullContext::NullContext() : saved_(Swap(nullptr)) {}

NullContext::~NullContext() { Swap(std::move(saved_)); }

absl::AnyInvocable<void()> Wrap(absl::AnyInvocable<void()> callback) {
  return [context = StackContext::Capture(), callback = std::move(callback)]() mutable {
    context.Run(callback);
  };
}

}  // namespace ioloop
