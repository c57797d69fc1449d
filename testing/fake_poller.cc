#include "testing/fake_poller.h"

#include <fcntl.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "base/check.h"
#include "base/errno_status.h"

namespace ioloop::testing {

void FakePoller::Inject(int fd, EventMask events) {
  for (PollEvent& e : queued_) {
    if (e.fd == fd) {
      e.events |= events;
      return;
    }
  }
  queued_.push_back({fd, events});
}

EventMask FakePoller::RegisteredEvents(int fd) const {
  auto it = registered_.find(fd);
  return it == registered_.end() ? kNone : it->second;
}

absl::Status FakePoller::Register(int fd, EventMask events) {
  if (fd < 0)
    return absl::InvalidArgumentError(absl::StrCat("fake: Register fd ", fd, ": negative fd"));
  if (events & ~kAllEvents) {
    return absl::InvalidArgumentError(
        absl::StrCat("fake: Register fd ", fd, ": unknown event bits"));
  }
  if (registered_.count(fd) != 0) {
    return absl::AlreadyExistsError(absl::StrCat("fake: Register fd ", fd, ": already registered"));
  }
  if (check_ == FdCheck::kRequireOpen && fcntl(fd, F_GETFD) < 0) {
    return ErrnoStatus(EBADF, "fake: Register", fd);
  }
  registered_.emplace(fd, events);
  return absl::OkStatus();
}

absl::Status FakePoller::Modify(int fd, EventMask events) {
  if (events & ~kAllEvents) {
    return absl::InvalidArgumentError(absl::StrCat("fake: Modify fd ", fd, ": unknown event bits"));
  }
  auto it = registered_.find(fd);
  if (it == registered_.end()) {
    return absl::NotFoundError(absl::StrCat("fake: Modify fd ", fd, ": not registered"));
  }
  it->second = events;
  return absl::OkStatus();
}

absl::Status FakePoller::Unregister(int fd) {
  if (registered_.erase(fd) == 0) {
    return absl::NotFoundError(absl::StrCat("fake: Unregister fd ", fd, ": not registered"));
  }
  return absl::OkStatus();
}

absl::Status FakePoller::Poll(absl::Duration timeout, std::vector<PollEvent>& ready) {
  ++poll_count_;
  last_timeout_ = timeout;
  if (hook_) hook_(timeout);
  bool delivered = false;
  for (const PollEvent& e : queued_) {
    auto it = registered_.find(e.fd);
    if (it == registered_.end()) continue;
    const EventMask m = e.events & (it->second | kError);
    if (m == kNone) continue;
    ready.push_back({e.fd, m});
    delivered = true;
  }
  queued_.clear();
  if (delivered) return absl::OkStatus();
  IOLOOP_CHECK(timeout != absl::InfiniteDuration(),
               "FakePoller::Poll: nothing injected and no timeout: a real loop would sleep "
               "forever (did the test forget to Stop() the loop or inject an event?)");
  if (clock_ != nullptr && timeout > absl::ZeroDuration()) clock_->Advance(timeout);
  return absl::OkStatus();
}

}  // namespace ioloop::testing
