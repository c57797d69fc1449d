#include "testing/fd_pairs.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/errno_status.h"

namespace ioloop::testing {
namespace {

absl::Status SetFlags(int fd, FdMode mode) {
  const int fd_flags = fcntl(fd, F_GETFD);
  if (fd_flags < 0 || fcntl(fd, F_SETFD, fd_flags | FD_CLOEXEC) < 0) {
    return ErrnoStatus(errno, "fcntl(F_SETFD, FD_CLOEXEC)", fd);
  }
  if (mode == FdMode::kBlocking) return absl::OkStatus();
  const int fl_flags = fcntl(fd, F_GETFL);
  if (fl_flags < 0 || fcntl(fd, F_SETFL, fl_flags | O_NONBLOCK) < 0) {
    return ErrnoStatus(errno, "fcntl(F_SETFL, O_NONBLOCK)", fd);
  }
  return absl::OkStatus();
}

// Sets both ends' flags; on failure closes both.
absl::Status Finish(int fds[2], FdMode mode) {
  for (int i = 0; i < 2; ++i) {
    if (absl::Status s = SetFlags(fds[i], mode); !s.ok()) {
      close(fds[0]);
      close(fds[1]);
      fds[0] = fds[1] = -1;
      return s;
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status MakePipe(int fds[2], FdMode mode) {
  if (pipe(fds) < 0) return ErrnoStatus(errno, "pipe");
  return Finish(fds, mode);
}

absl::Status MakeSocketPair(int fds[2], FdMode mode) {
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) < 0) return ErrnoStatus(errno, "socketpair");
  return Finish(fds, mode);
}

}  // namespace ioloop::testing
