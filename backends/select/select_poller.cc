#include "backends/select/select_poller.h"

#include <sys/select.h>

#include <algorithm>
#include <cerrno>

#include "absl/strings/str_cat.h"
#include "backends/internal/backend_util.h"
#include "backends/internal/fd_table.h"
#include "base/errno_status.h"

namespace ioloop {
namespace {

using backend_internal::FdTable;

constexpr absl::string_view kName = "select";

class SelectPoller final : public Poller {
 public:
  SelectPoller() {
    FD_ZERO(&read_set_);
    FD_ZERO(&write_set_);
  }

  absl::Status Register(int fd, EventMask events) override {
    if (auto s = Check("Register", fd, events); !s.ok()) return s;
    if (table_.Contains(fd)) return backend_internal::AlreadyRegistered(kName, fd);
    if (!backend_internal::IsOpen(fd)) {
      return ErrnoStatus(EBADF, "select: Register", fd);
    }
    table_.Set(fd, events);
    fds_.push_back(fd);
    Apply(fd, events);
    return absl::OkStatus();
  }

  absl::Status Modify(int fd, EventMask events) override {
    if (auto s = Check("Modify", fd, events); !s.ok()) return s;
    if (!table_.Contains(fd)) return backend_internal::NotRegistered(kName, "Modify", fd);
    table_.Set(fd, events);
    Apply(fd, events);
    return absl::OkStatus();
  }

  absl::Status Unregister(int fd) override {
    if (fd < 0 || !table_.Contains(fd))
      return backend_internal::NotRegistered(kName, "Unregister", fd);
    table_.Erase(fd);
    Apply(fd, kNone);
    fds_.erase(std::find(fds_.begin(), fds_.end(), fd));
    return absl::OkStatus();
  }

  absl::Status Poll(absl::Duration timeout, std::vector<PollEvent>& ready) override {
    fd_set readable = read_set_;
    fd_set writable = write_set_;
    timeval tv;
    timeval* tvp = nullptr;
    if (timeout != absl::InfiniteDuration()) {
      tv = absl::ToTimeval(
          absl::Ceil(std::max(timeout, absl::ZeroDuration()), absl::Microseconds(1)));
      tvp = &tv;
    }
    const int max_fd = fds_.empty() ? -1 : *std::max_element(fds_.begin(), fds_.end());
    int n = select(max_fd + 1, &readable, &writable, nullptr, tvp);
    if (n < 0 && errno == EBADF) {
      // A registered fd was closed behind our back: report it once, stop watching it
      // (until a Modify()), and look at the others without waiting.
      ReportClosed(ready);
      readable = read_set_;
      writable = write_set_;
      timeval zero{};
      n = select(max_fd + 1, &readable, &writable, nullptr, &zero);
    }
    if (n < 0) {
      if (errno == EINTR) return absl::OkStatus();
      return ErrnoStatus(errno, "select: select");
    }
    if (n == 0) return absl::OkStatus();
    for (int fd : fds_) {
      EventMask m = kNone;
      if (FD_ISSET(fd, &readable)) m |= kRead;
      if (FD_ISSET(fd, &writable)) m |= kWrite;
      if (m != kNone) ready.push_back({fd, m});
    }
    return absl::OkStatus();
  }

  absl::string_view Name() const override { return kName; }

 private:
  static absl::Status Check(absl::string_view call, int fd, EventMask events) {
    if (auto s = backend_internal::CheckArguments(kName, call, fd, events); !s.ok()) return s;
    if (fd >= FD_SETSIZE) {
      return absl::InvalidArgumentError(
          absl::StrCat(kName, ": ", call, " fd ", fd, ": select cannot watch fds >= FD_SETSIZE (",
                       FD_SETSIZE, "); use the poll or epoll backend"));
    }
    return absl::OkStatus();
  }

  void Apply(int fd, EventMask events) {
    if (events & kRead)
      FD_SET(fd, &read_set_);
    else
      FD_CLR(fd, &read_set_);
    if (events & kWrite)
      FD_SET(fd, &write_set_);
    else
      FD_CLR(fd, &write_set_);
  }

  // select() failed with EBADF: a registered fd was closed. Report each such fd as an
  // error once, and clear its bits so the next select() skips it.
  void ReportClosed(std::vector<PollEvent>& ready) {
    for (int fd : fds_) {
      if (!backend_internal::IsOpen(fd)) {
        ready.push_back({fd, backend_internal::WithWatchedOnError(kError, table_.Get(fd))});
        Apply(fd, kNone);
      }
    }
  }

  FdTable table_;
  std::vector<int> fds_;  // Registered fds, for the scan after select().
  fd_set read_set_;
  fd_set write_set_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Poller>> NewSelectPoller() {
  return std::unique_ptr<Poller>(new SelectPoller());
}

}  // namespace ioloop
