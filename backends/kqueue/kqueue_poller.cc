#include "backends/kqueue/kqueue_poller.h"

#include <fcntl.h>
#include <sys/event.h>
#include <sys/time.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "backends/internal/backend_util.h"
#include "backends/internal/fd_table.h"
#include "base/errno_status.h"

namespace ioloop {
namespace {

using backend_internal::FdTable;

constexpr absl::string_view kName = "kqueue";
constexpr size_t kInitialBatch = 256;
constexpr size_t kMaxBatch = 65536;

class KqueuePoller final : public Poller {
 public:
  explicit KqueuePoller(int kq) : kq_(kq), batch_(kInitialBatch) {}
  ~KqueuePoller() override { close(kq_); }

  absl::Status Register(int fd, EventMask events) override {
    if (auto s = backend_internal::CheckArguments(kName, "Register", fd, events); !s.ok()) return s;
    if (table_.Contains(fd)) return backend_internal::AlreadyRegistered(kName, fd);
    if (!backend_internal::IsOpen(fd)) {
      return ErrnoStatus(EBADF, "kqueue: Register", fd);
    }
    if (absl::Status s = Change("Register", fd, kNone, events); !s.ok()) return s;
    table_.Set(fd, events);
    return absl::OkStatus();
  }

  absl::Status Modify(int fd, EventMask events) override {
    if (auto s = backend_internal::CheckArguments(kName, "Modify", fd, events); !s.ok()) return s;
    if (!table_.Contains(fd)) return backend_internal::NotRegistered(kName, "Modify", fd);
    if (absl::Status s = Change("Modify", fd, table_.Get(fd), events); !s.ok()) return s;
    table_.Set(fd, events);
    return absl::OkStatus();
  }

  absl::Status Unregister(int fd) override {
    if (fd < 0 || !table_.Contains(fd))
      return backend_internal::NotRegistered(kName, "Unregister", fd);
    const EventMask old = table_.Get(fd);
    table_.Erase(fd);
    // A closed fd already lost its filters (ENOENT/EBADF): that is success.
    absl::Status s = Change("Unregister", fd, old, kNone);
    if (!s.ok() && !backend_internal::IsOpen(fd)) return absl::OkStatus();
    return s;
  }

  absl::Status Poll(absl::Duration timeout, std::vector<PollEvent>& ready) override {
    timespec ts;
    timespec* tsp = nullptr;
    if (timeout != absl::InfiniteDuration()) {
      ts = absl::ToTimespec(absl::Ceil(
          timeout < absl::ZeroDuration() ? absl::ZeroDuration() : timeout, absl::Nanoseconds(1)));
      tsp = &ts;
    }
    const int n = kevent(kq_, nullptr, 0, batch_.data(), static_cast<int>(batch_.size()), tsp);
    if (n < 0) {
      if (errno == EINTR) return absl::OkStatus();
      return ErrnoStatus(errno, "kqueue: kevent", kq_);
    }
    merged_.clear();
    for (int i = 0; i < n; ++i) {
      const struct kevent& ev = batch_[i];
      const int fd = static_cast<int>(ev.ident);
      if (!table_.Contains(fd)) continue;
      EventMask m = kNone;
      if (ev.flags & EV_ERROR) {
        m |= kError;
      } else {
        if (ev.filter == EVFILT_READ) m |= kRead;
        if (ev.filter == EVFILT_WRITE) m |= kWrite;
        if (ev.flags & EV_EOF) m |= kError;
      }
      m = backend_internal::WithWatchedOnError(m, table_.Get(fd));
      auto [it, inserted] = merged_.try_emplace(fd, ready.size());
      if (inserted) {
        ready.push_back({fd, m});
      } else {
        ready[it->second].events |= m;
      }
    }
    if (static_cast<size_t>(n) == batch_.size() && batch_.size() < kMaxBatch) {
      batch_.resize(batch_.size() * 2);
    }
    return absl::OkStatus();
  }

  absl::string_view Name() const override { return kName; }

 private:
  // Change() moves `fd` from filters for `from` to filters for `to`.
  absl::Status Change(absl::string_view call, int fd, EventMask from, EventMask to) {
    struct kevent changes[2];
    int count = 0;
    auto edit = [&](int16_t filter, EventMask bit) {
      if ((from & bit) == (to & bit)) return;
      EV_SET(&changes[count++], fd, filter, (to & bit) ? EV_ADD : EV_DELETE, 0, 0, nullptr);
    };
    edit(EVFILT_READ, kRead);
    edit(EVFILT_WRITE, kWrite);
    if (count == 0) return absl::OkStatus();
    if (kevent(kq_, changes, count, nullptr, 0, nullptr) < 0) {
      return ErrnoStatus(errno, absl::StrCat(kName, ": ", call), fd);
    }
    return absl::OkStatus();
  }

  const int kq_;
  FdTable table_;
  std::vector<struct kevent> batch_;
  absl::flat_hash_map<int, size_t> merged_;  // fd -> index in `ready`, per Poll().
};

}  // namespace

absl::StatusOr<std::unique_ptr<Poller>> NewKqueuePoller() {
  const int kq = kqueue();
  if (kq < 0) return ErrnoStatus(errno, "kqueue: kqueue");
  if (fcntl(kq, F_SETFD, FD_CLOEXEC) < 0) {
    const int error = errno;
    close(kq);
    return ErrnoStatus(error, "kqueue: fcntl(FD_CLOEXEC)", kq);
  }
  return std::unique_ptr<Poller>(new KqueuePoller(kq));
}

}  // namespace ioloop
