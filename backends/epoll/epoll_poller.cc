#include "backends/epoll/epoll_poller.h"

#include <sys/epoll.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "backends/internal/backend_util.h"
#include "backends/internal/fd_table.h"
#include "base/errno_status.h"

namespace ioloop {
namespace {

using backend_internal::FdTable;

constexpr absl::string_view kName = "epoll";
constexpr size_t kInitialBatch = 256;
constexpr size_t kMaxBatch = 65536;

uint32_t ToEpoll(EventMask events) {
  uint32_t e = 0;  // EPOLLERR and EPOLLHUP are always reported.
  if (events & kRead) e |= EPOLLIN;
  if (events & kWrite) e |= EPOLLOUT;
  return e;
}

EventMask FromEpoll(uint32_t e) {
  EventMask m = kNone;
  if (e & (EPOLLIN | EPOLLPRI)) m |= kRead;
  if (e & EPOLLOUT) m |= kWrite;
  if (e & (EPOLLERR | EPOLLHUP)) m |= kError;
  return m;
}

class EpollPoller final : public Poller {
 public:
  explicit EpollPoller(int epoll_fd) : epoll_fd_(epoll_fd), batch_(kInitialBatch) {}
  ~EpollPoller() override { close(epoll_fd_); }

  absl::Status Register(int fd, EventMask events) override {
    if (auto s = backend_internal::CheckArguments(kName, "Register", fd, events); !s.ok()) return s;
    if (table_.Contains(fd)) return backend_internal::AlreadyRegistered(kName, fd);
    if (absl::Status s = Control(EPOLL_CTL_ADD, "epoll_ctl(ADD)", fd, events); !s.ok()) return s;
    table_.Set(fd, events);
    return absl::OkStatus();
  }

  absl::Status Modify(int fd, EventMask events) override {
    if (auto s = backend_internal::CheckArguments(kName, "Modify", fd, events); !s.ok()) return s;
    if (!table_.Contains(fd)) return backend_internal::NotRegistered(kName, "Modify", fd);
    if (absl::Status s = Control(EPOLL_CTL_MOD, "epoll_ctl(MOD)", fd, events); !s.ok()) return s;
    table_.Set(fd, events);
    return absl::OkStatus();
  }

  absl::Status Unregister(int fd) override {
    if (fd < 0 || !table_.Contains(fd))
      return backend_internal::NotRegistered(kName, "Unregister", fd);
    table_.Erase(fd);
    epoll_event unused{};
    if (epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, &unused) < 0 && errno != EBADF && errno != ENOENT) {
      return ErrnoStatus(errno, "epoll: epoll_ctl(DEL)", fd);
    }
    return absl::OkStatus();  // EBADF/ENOENT: closed, so the kernel already dropped it.
  }

  absl::Status Poll(absl::Duration timeout, std::vector<PollEvent>& ready) override {
    const int n = epoll_wait(epoll_fd_, batch_.data(), static_cast<int>(batch_.size()),
                             backend_internal::TimeoutMillis(timeout));
    if (n < 0) {
      if (errno == EINTR) return absl::OkStatus();
      return ErrnoStatus(errno, "epoll: epoll_wait", epoll_fd_);
    }
    ready.reserve(ready.size() + static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) {
      const int fd = batch_[i].data.fd;
      const uint32_t registered = table_.Lookup(fd);
      if (registered == FdTable::kNotRegistered) continue;  // A dup'd description outliving its fd.
      const uint32_t e = batch_[i].events;
      // The common case, plain readiness without error or hang-up, skips the mapping.
      const EventMask m = e == EPOLLIN ? kRead
                          : e == EPOLLOUT
                              ? kWrite
                              : backend_internal::WithWatchedOnError(FromEpoll(e), registered);
      ready.push_back({fd, m});
    }
    if (static_cast<size_t>(n) == batch_.size() && batch_.size() < kMaxBatch &&
        batch_.size() < table_.count()) {
      batch_.resize(batch_.size() * 2);  // More were probably ready: take more next time.
    }
    return absl::OkStatus();
  }

  absl::string_view Name() const override { return kName; }

 private:
  absl::Status Control(int op, absl::string_view call, int fd, EventMask events) {
    epoll_event ev{};
    ev.events = ToEpoll(events);
    ev.data.fd = fd;
    if (epoll_ctl(epoll_fd_, op, fd, &ev) < 0) {
      return ErrnoStatus(errno, absl::StrCat(kName, ": ", call), fd);
    }
    return absl::OkStatus();
  }

  const int epoll_fd_;
  FdTable table_;
  std::vector<epoll_event> batch_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Poller>> NewEpollPoller() {
  const int fd = epoll_create1(EPOLL_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, "epoll: epoll_create1");
  return std::unique_ptr<Poller>(new EpollPoller(fd));
}

}  // namespace ioloop
