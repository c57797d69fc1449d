#include "waker/eventfd_waker.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>

#include "waker/errno_status.h"

namespace ioloop {
namespace {

class EventFdWaker final : public Waker {
 public:
  explicit EventFdWaker(int fd) : fd_(fd) {}
  ~EventFdWaker() override { close(fd_); }

  int fd() const override { return fd_; }

  absl::Status Wake() override {
    const int saved_errno = errno;
    const uint64_t one = 1;
    ssize_t n;
    do {
      n = write(fd_, &one, sizeof one);
    } while (n < 0 && errno == EINTR);
    // EAGAIN: the counter is at its maximum, i.e. a wake is certainly pending.
    const int error = (n < 0 && errno != EAGAIN) ? errno : 0;
    errno = saved_errno;
    if (error != 0) return waker_internal::ErrnoStatus(error, "eventfd write", fd_);
    return absl::OkStatus();
  }

  void Consume() override {
    uint64_t value;
    ssize_t n;
    do {
      n = read(fd_, &value, sizeof value);  // One read resets the counter.
    } while (n < 0 && errno == EINTR);
  }

  absl::string_view Name() const override { return "eventfd"; }

 private:
  const int fd_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Waker>> NewEventFdWaker() {
  const int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd < 0) return waker_internal::ErrnoStatus(errno, "eventfd");
  return std::unique_ptr<Waker>(new EventFdWaker(fd));
}

}  // namespace ioloop
