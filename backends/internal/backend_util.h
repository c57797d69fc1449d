// Helpers shared by the backends (private to //backends): argument checks with
// messages that name the fd, the shared error-reporting rule, and timeout conversion.

#ifndef IOLOOP_BACKENDS_INTERNAL_BACKEND_UTIL_H_
#define IOLOOP_BACKENDS_INTERNAL_BACKEND_UTIL_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "backends/events.h"

namespace ioloop::backend_internal {

// CheckArguments() validates an fd and mask for Register()/Modify().
absl::Status CheckArguments(absl::string_view backend, absl::string_view call, int fd,
                            EventMask events);

// NotRegistered() / AlreadyRegistered() are the NotFound / AlreadyExists statuses.
absl::Status NotRegistered(absl::string_view backend, absl::string_view call, int fd);
absl::Status AlreadyRegistered(absl::string_view backend, int fd);

// IsOpen() is true if `fd` names an open descriptor.
bool IsOpen(int fd);

// TimeoutMillis() converts a Poll() timeout for poll(2)/epoll_wait(2): -1 for
// infinite, 0 for non-positive, otherwise milliseconds rounded up and clamped.
int TimeoutMillis(absl::Duration timeout);

// WithWatchedOnError() applies the shared reporting rule: an fd in error or hung up
// also reports the directions it is registered for.
inline EventMask WithWatchedOnError(EventMask found, EventMask registered) {
  return (found & kError) ? (found | (registered & (kRead | kWrite))) : found;
}

}  // namespace ioloop::backend_internal

#endif  // IOLOOP_BACKENDS_INTERNAL_BACKEND_UTIL_H_
