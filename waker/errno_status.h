// Internal to //waker: an errno as an absl::Status naming the call and descriptor.

#ifndef IOLOOP_WAKER_ERRNO_STATUS_H_
#define IOLOOP_WAKER_ERRNO_STATUS_H_

#include <cerrno>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace ioloop::waker_internal {

inline absl::Status ErrnoStatus(int error, absl::string_view what, int fd = -1) {
  return absl::ErrnoToStatus(
      error, fd >= 0 ? absl::StrCat(what, " (fd ", fd, ")") : std::string(what));
}

}  // namespace ioloop::waker_internal

#endif  // IOLOOP_WAKER_ERRNO_STATUS_H_
