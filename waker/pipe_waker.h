// A self-pipe Waker: portable to every POSIX system.

#ifndef IOLOOP_WAKER_PIPE_WAKER_H_
#define IOLOOP_WAKER_PIPE_WAKER_H_

#include <memory>

#include "absl/status/statusor.h"
#include "waker/waker.h"

namespace ioloop {

// NewPipeWaker() creates a Waker on a pipe whose two ends are non-blocking and
// close-on-exec. A full pipe already means "woken", so Wake() never blocks.
absl::StatusOr<std::unique_ptr<Waker>> NewPipeWaker();

}  // namespace ioloop

#endif  // IOLOOP_WAKER_PIPE_WAKER_H_
