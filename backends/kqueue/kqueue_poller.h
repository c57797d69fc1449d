// The kqueue(2) backend: macOS and the BSDs.

#ifndef IOLOOP_BACKENDS_KQUEUE_KQUEUE_POLLER_H_
#define IOLOOP_BACKENDS_KQUEUE_KQUEUE_POLLER_H_

#include <memory>

#include "absl/status/statusor.h"
#include "backends/poller.h"

namespace ioloop {

// NewKqueuePoller() creates a kqueue backend (level-triggered EVFILT_READ and
// EVFILT_WRITE filters). Read and write results for one fd are merged into one
// PollEvent; EV_EOF and EV_ERROR map to kError. An fd watched for nothing has no
// filter, so kqueue cannot report its hang-up.
absl::StatusOr<std::unique_ptr<Poller>> NewKqueuePoller();

}  // namespace ioloop

#endif  // IOLOOP_BACKENDS_KQUEUE_KQUEUE_POLLER_H_
