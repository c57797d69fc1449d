#include "backends/poll/poll_poller.h"

#include <poll.h>

#include <cerrno>

#include "backends/internal/backend_util.h"
#include "backends/internal/fd_table.h"
#include "base/errno_status.h"

namespace ioloop {
namespace {

using backend_internal::FdTable;

constexpr absl::string_view kName = "poll";

short ToPoll(EventMask events) {
  short e = 0;  // POLLERR, POLLHUP and POLLNVAL are always reported.
  if (events & kRead) e |= POLLIN;
  if (events & kWrite) e |= POLLOUT;
  return e;
}

EventMask FromPoll(short e) {
  EventMask m = kNone;
  if (e & (POLLIN | POLLPRI)) m |= kRead;
  if (e & POLLOUT) m |= kWrite;
  if (e & (POLLERR | POLLHUP | POLLNVAL)) m |= kError;
  return m;
}

class PollPoller final : public Poller {
 public:
  absl::Status Register(int fd, EventMask events) override {
    if (auto s = backend_internal::CheckArguments(kName, "Register", fd, events); !s.ok()) return s;
    if (table_.Contains(fd)) return backend_internal::AlreadyRegistered(kName, fd);
    if (!backend_internal::IsOpen(fd)) {
      return ErrnoStatus(EBADF, "poll: Register", fd);
    }
    table_.Set(fd, events);
    if (static_cast<size_t>(fd) >= index_.size()) index_.resize(fd + 1);
    index_[fd] = static_cast<int>(pollfds_.size());
    pollfds_.push_back({fd, ToPoll(events), 0});
    return absl::OkStatus();
  }

  absl::Status Modify(int fd, EventMask events) override {
    if (auto s = backend_internal::CheckArguments(kName, "Modify", fd, events); !s.ok()) return s;
    if (!table_.Contains(fd)) return backend_internal::NotRegistered(kName, "Modify", fd);
    table_.Set(fd, events);
    pollfds_[index_[fd]].fd = fd;  // Watched again, if it was found closed.
    pollfds_[index_[fd]].events = ToPoll(events);
    return absl::OkStatus();
  }

  absl::Status Unregister(int fd) override {
    if (fd < 0 || !table_.Contains(fd))
      return backend_internal::NotRegistered(kName, "Unregister", fd);
    table_.Erase(fd);
    const int i = index_[fd];
    const int last = static_cast<int>(pollfds_.size()) - 1;
    if (i != last) {  // Keep the array dense: move the last entry into the hole.
      pollfds_[i] = pollfds_[last];
      index_[FdOf(pollfds_[i])] = i;
    }
    pollfds_.pop_back();
    index_[fd] = -1;
    return absl::OkStatus();
  }

  absl::Status Poll(absl::Duration timeout, std::vector<PollEvent>& ready) override {
    int n = poll(pollfds_.data(), pollfds_.size(), backend_internal::TimeoutMillis(timeout));
    if (n < 0) {
      if (errno == EINTR) return absl::OkStatus();
      return ErrnoStatus(errno, "poll: poll");
    }
    for (size_t i = 0; n > 0 && i < pollfds_.size(); ++i) {
      const pollfd& p = pollfds_[i];
      if (p.revents == 0) continue;
      --n;
      ready.push_back(
          {p.fd, backend_internal::WithWatchedOnError(FromPoll(p.revents), table_.Get(p.fd))});
      // Closed behind our back: reported once; a negative fd makes poll() skip the
      // entry until Modify() (or Unregister()).
      if (p.revents & POLLNVAL) pollfds_[i].fd = ~p.fd;
    }
    return absl::OkStatus();
  }

  absl::string_view Name() const override { return kName; }

 private:
  static int FdOf(const pollfd& p) { return p.fd < 0 ? ~p.fd : p.fd; }

  FdTable table_;
  std::vector<pollfd> pollfds_;
  std::vector<int> index_;  // fd -> position in pollfds_, -1 if none.
};

}  // namespace

absl::StatusOr<std::unique_ptr<Poller>> NewPollPoller() {
  return std::unique_ptr<Poller>(new PollPoller());
}

}  // namespace ioloop
