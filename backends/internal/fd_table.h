// FdTable: the fd-indexed registration table the readiness backends keep (private to
// //backends): for each registered fd, the EventMask it watches.

#ifndef IOLOOP_BACKENDS_INTERNAL_FD_TABLE_H_
#define IOLOOP_BACKENDS_INTERNAL_FD_TABLE_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "backends/events.h"

namespace ioloop::backend_internal {

// FdTable: registered fds and their masks, indexed by fd number (memory grows with the
// highest fd registered). Not thread-safe: the owning backend serialises access.
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

#endif  // IOLOOP_BACKENDS_INTERNAL_FD_TABLE_H_
