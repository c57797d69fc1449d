// Internal to //waker: the one write every Waker::Wake() makes.

#ifndef IOLOOP_WAKER_WRITE_WAKE_H_
#define IOLOOP_WAKER_WRITE_WAKE_H_

#include <unistd.h>

#include <cerrno>
#include <cstddef>

#include "base/eintr.h"

namespace ioloop::waker_internal {

// WriteWake() writes `size` bytes to the non-blocking `fd` and returns 0, or the
// errno of a failure that means the descriptor is unusable. EAGAIN counts as success:
// the eventfd counter or the pipe is full, so a wake is certainly pending. Preserves
// errno and is async-signal-safe.
inline int WriteWake(int fd, const void* data, size_t size) {
  const int saved_errno = errno;
  const ssize_t n = RetryOnEintr([&] { return write(fd, data, size); });
  const int error = (n < 0 && errno != EAGAIN) ? errno : 0;
  errno = saved_errno;
  return error;
}

}  // namespace ioloop::waker_internal

#endif  // IOLOOP_WAKER_WRITE_WAKE_H_
