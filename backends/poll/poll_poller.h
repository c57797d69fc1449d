// The poll(2) backend: POSIX, no fd limit, O(registered fds) per Poll().

#ifndef IOLOOP_BACKENDS_POLL_POLL_POLLER_H_
#define IOLOOP_BACKENDS_POLL_POLL_POLLER_H_

#include <memory>

#include "absl/status/statusor.h"
#include "backends/poller.h"

namespace ioloop {

// NewPollPoller() creates a poll(2) backend. It keeps a dense pollfd array (O(1)
// register and unregister) and scans it after each wait. A registered fd that is
// closed reports kError (POLLNVAL) until unregistered.
absl::StatusOr<std::unique_ptr<Poller>> NewPollPoller();

}  // namespace ioloop

#endif  // IOLOOP_BACKENDS_POLL_POLL_POLLER_H_
