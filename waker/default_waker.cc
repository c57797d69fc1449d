#include "waker/default_waker.h"

// BUILD picks the mechanism (as it picks the default poller): IOLOOP_WAKER_EVENTFD on
// Linux, the pipe elsewhere.
#ifdef IOLOOP_WAKER_EVENTFD
#include "waker/eventfd_waker.h"
#else
#include "waker/pipe_waker.h"
#endif

namespace ioloop {

absl::StatusOr<std::unique_ptr<Waker>> NewDefaultWaker() {
#ifdef IOLOOP_WAKER_EVENTFD
  return NewEventFdWaker();
#else
  return NewPipeWaker();
#endif
}

}  // namespace ioloop
