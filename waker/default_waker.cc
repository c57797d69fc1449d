#include "waker/waker.h"

#if defined(__linux__)
#include "waker/eventfd_waker.h"
#else
#include "waker/pipe_waker.h"
#endif

namespace ioloop {

absl::StatusOr<std::unique_ptr<Waker>> NewDefaultWaker() {
#if defined(__linux__)
  return NewEventFdWaker();
#else
  return NewPipeWaker();
#endif
}

}  // namespace ioloop
