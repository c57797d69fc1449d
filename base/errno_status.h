// ErrnoStatus(): an errno value as an absl::Status that names what failed.
//
// Every part of ioloop reports a failed system call the same way:
//
//   ErrnoStatus(EBADF, "epoll: epoll_ctl(ADD)", 7)
//       -> "epoll: epoll_ctl(ADD) fd 7: Bad file descriptor"
//   ErrnoStatus(EMFILE, "eventfd")
//       -> "eventfd: Too many open files"
//
// The status code is absl::ErrnoToStatus()'s mapping of the errno (EBADF ->
// kFailedPrecondition, EMFILE -> kResourceExhausted, ...).

#ifndef IOLOOP_BASE_ERRNO_STATUS_H_
#define IOLOOP_BASE_ERRNO_STATUS_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace ioloop {

// ErrnoStatus() is `error` as a status whose message is "<what> fd <fd>: <strerror>",
// or "<what>: <strerror>" when `fd` is negative (no descriptor involved).
absl::Status ErrnoStatus(int error, absl::string_view what, int fd = -1);

}  // namespace ioloop

#endif  // IOLOOP_BASE_ERRNO_STATUS_H_
