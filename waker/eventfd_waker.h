// An eventfd(2) Waker: one descriptor, one 8-byte counter. Linux only.

#ifndef IOLOOP_WAKER_EVENTFD_WAKER_H_
#define IOLOOP_WAKER_EVENTFD_WAKER_H_

#include <memory>

#include "absl/status/statusor.h"
#include "waker/waker.h"

namespace ioloop {

// NewEventFdWaker() creates a Waker on a non-blocking, close-on-exec eventfd.
absl::StatusOr<std::unique_ptr<Waker>> NewEventFdWaker();

}  // namespace ioloop

#endif  // IOLOOP_WAKER_EVENTFD_WAKER_H_
