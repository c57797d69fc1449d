// NewDefaultWaker(): the platform's best Waker (eventfd on Linux, a pipe elsewhere).

#ifndef IOLOOP_WAKER_DEFAULT_WAKER_H_
#define IOLOOP_WAKER_DEFAULT_WAKER_H_

#include <memory>

#include "absl/status/statusor.h"
#include "waker/waker.h"

namespace ioloop {

// NewDefaultWaker() creates the platform's default Waker. Fails (with the errno as a
// status) only when the process is out of descriptors or memory.
absl::StatusOr<std::unique_ptr<Waker>> NewDefaultWaker();

}  // namespace ioloop

#endif  // IOLOOP_WAKER_DEFAULT_WAKER_H_
