#include "waker/pipe_waker.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "base/eintr.h"
#include "base/errno_status.h"
#include "waker/write_wake.h"

namespace ioloop {
namespace {

class PipeWaker final : public Waker {
 public:
  PipeWaker(int read_fd, int write_fd) : read_fd_(read_fd), write_fd_(write_fd) {}
  ~PipeWaker() override {
    close(read_fd_);
    close(write_fd_);
  }

  int fd() const override { return read_fd_; }

  absl::Status Wake() override {
    const char byte = 'w';
    const int error = waker_internal::WriteWake(write_fd_, &byte, 1);
    return error == 0 ? absl::OkStatus() : ErrnoStatus(error, "pipe write", write_fd_);
  }

  void Consume() override {
    char buffer[256];
    while (true) {
      const ssize_t n = RetryOnEintr([&] { return read(read_fd_, buffer, sizeof buffer); });
      if (n <= 0) break;  // Empty (EAGAIN), or the write end is gone.
    }
  }

  absl::string_view Name() const override { return "pipe"; }

 private:
  const int read_fd_;
  const int write_fd_;
};

#if !(defined(__linux__) || defined(__FreeBSD__) || defined(__NetBSD__) || defined(__OpenBSD__))
absl::Status MakeNonBlockingCloseOnExec(int fd) {
  const int fd_flags = fcntl(fd, F_GETFD);
  const int fl_flags = fcntl(fd, F_GETFL);
  if (fd_flags < 0 || fl_flags < 0 || fcntl(fd, F_SETFD, fd_flags | FD_CLOEXEC) < 0 ||
      fcntl(fd, F_SETFL, fl_flags | O_NONBLOCK) < 0) {
    return ErrnoStatus(errno, "fcntl", fd);
  }
  return absl::OkStatus();
}
#endif

}  // namespace

absl::StatusOr<std::unique_ptr<Waker>> NewPipeWaker() {
  int fds[2];
#if defined(__linux__) || defined(__FreeBSD__) || defined(__NetBSD__) || defined(__OpenBSD__)
  if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) < 0) return ErrnoStatus(errno, "pipe2");
#else
  // No pipe2 (macOS): a fork+exec on another thread between pipe() and fcntl() could
  // inherit these two descriptors; nothing closes that window on such systems.
  if (pipe(fds) < 0) return ErrnoStatus(errno, "pipe");
  for (int fd : fds) {
    if (absl::Status s = MakeNonBlockingCloseOnExec(fd); !s.ok()) {
      close(fds[0]);
      close(fds[1]);
      return s;
    }
  }
#endif
  return std::unique_ptr<Waker>(new PipeWaker(fds[0], fds[1]));
}

}  // namespace ioloop
