#include "waker/eventfd_waker.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>

#include "base/eintr.h"
#include "base/errno_status.h"
#include "waker/write_wake.h"

namespace ioloop {
namespace {

class EventFdWaker final : public Waker {
 public:
  explicit EventFdWaker(int fd) : fd_(fd) {}
  ~EventFdWaker() override { close(fd_); }

  int fd() const override { return fd_; }

  absl::Status Wake() override {
    const uint64_t one = 1;
    const int error = waker_internal::WriteWake(fd_, &one, sizeof one);
    return error == 0 ? absl::OkStatus() : ErrnoStatus(error, "eventfd write", fd_);
  }

  void Consume() override {
    uint64_t value;
    RetryOnEintr([&] { return read(fd_, &value, sizeof value); });  // Resets the counter.
  }

  absl::string_view Name() const override { return "eventfd"; }

 private:
  const int fd_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Waker>> NewEventFdWaker() {
  const int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd < 0) return ErrnoStatus(errno, "eventfd");
  return std::unique_ptr<Waker>(new EventFdWaker(fd));
}

}  // namespace ioloop
