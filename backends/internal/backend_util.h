// Helpers shared by the backends (private to //backends): argument checks with
// messages that name the fd, errno statuses, timeout conversion, and FdTable, the
// fd-indexed registration table every backend keeps.

#ifndef IOLOOP_BACKENDS_INTERNAL_BACKEND_UTIL_H_
#define IOLOOP_BACKENDS_INTERNAL_BACKEND_UTIL_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "backends/events.h"
#include "backends/poller.h"
#include "base/errno_status.h"

namespace ioloop::backend_internal {

// CheckArguments() validates an fd and mask for Register()/Modify().
absl::Status CheckArguments(absl::string_view backend, absl::string_view call, int fd,
                            EventMask events);

// NotRegistered() / AlreadyRegistered() are the NotFound / AlreadyExists statuses.
absl::Status NotRegistered(absl::string_view backend, absl::string_view call, int fd);
absl::Status AlreadyRegistered(absl::string_view backend, int fd);

// IsOpen() is true if `fd` names an open descriptor.
bool IsOpen(int fd);

// TimeoutMillis() converts a Poll() timeout for poll(2)/epoll_wait(2): -1 for
// infinite, 0 for non-positive, otherwise milliseconds rounded up and clamped.
int TimeoutMillis(absl::Duration timeout);

// WithWatchedOnError() applies the shared reporting rule: an fd in error or hung up
// also reports the directions it is registered for.
inline EventMask WithWatchedOnError(EventMask found, EventMask registered) {
  return (found & kError) ? (found | (registered & (kRead | kWrite))) : found;
}

// ValueOrDie() returns the poller or, if creation failed (the process is out of
// descriptors or memory), prints the status naming `what` and aborts.
std::unique_ptr<Poller> ValueOrDie(absl::StatusOr<std::unique_ptr<Poller>> poller,
                                   absl::string_view what);

// FdTable: registered fds and their masks, indexed by fd number.
class FdTable {
 public:
  bool Contains(int fd) const {
    return static_cast<size_t>(fd) < masks_.size() && (masks_[fd] & kRegistered);
  }
  EventMask Get(int fd) const { return masks_[fd] & ~kRegistered; }
  // Lookup() is Contains() and Get() in one load: the mask, or kNotRegistered.
  static constexpr uint32_t kNotRegistered = 0xffffffffu;
  uint32_t Lookup(int fd) const {
    if (static_cast<size_t>(fd) >= masks_.size()) return kNotRegistered;
    const uint32_t m = masks_[fd];
    return (m & kRegistered) ? (m & ~kRegistered) : kNotRegistered;
  }
  void Set(int fd, EventMask events) {
    if (static_cast<size_t>(fd) >= masks_.size()) masks_.resize(fd + 1, 0);
    if (!(masks_[fd] & kRegistered)) ++count_;
    masks_[fd] = events | kRegistered;
  }
  void Erase(int fd) {
    masks_[fd] = 0;
    --count_;
  }
  size_t count() const { return count_; }

 private:
  static constexpr uint32_t kRegistered = 0x80000000u;
  std::vector<uint32_t> masks_;
  size_t count_ = 0;
};

}  // namespace ioloop::backend_internal

#endif  // IOLOOP_BACKENDS_INTERNAL_BACKEND_UTIL_H_
