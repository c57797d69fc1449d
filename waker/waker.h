// Waker: a file descriptor another thread (or a signal handler) can make readable.
//
// The loop watches fd() for kRead; Wake() makes it readable, Consume() drains it. Two
// mechanisms implement it: eventfd (Linux, //waker:eventfd) and a non-blocking pipe
// (POSIX, //waker:pipe). waker/default_waker.h (//waker:default) makes the platform
// default, as backends/default_poller.h does for pollers.

#ifndef IOLOOP_WAKER_WAKER_H_
#define IOLOOP_WAKER_WAKER_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace ioloop {

// Waker owns its descriptors (close-on-exec, non-blocking) and closes them when
// destroyed.
class Waker {
 public:
  virtual ~Waker() = default;

  // fd() is the descriptor to watch for readability. Valid for the Waker's life.
  virtual int fd() const = 0;

  // Wake() makes fd() readable. Thread-safe and async-signal-safe (it preserves
  // errno); never blocks: a wake already pending, or a full pipe, counts as woken.
  // Returns an error only if the descriptor is unusable (e.g. closed behind the
  // Waker's back); building that status allocates, so a signal handler should treat
  // the result as advisory.
  virtual absl::Status Wake() = 0;

  // Consume() drains every pending wake, so fd() is no longer readable until the next
  // Wake(). Never blocks, also when nothing is pending. Call it from the thread that
  // watches fd().
  virtual void Consume() = 0;

  // Name() is "eventfd" or "pipe".
  virtual absl::string_view Name() const = 0;
};

}  // namespace ioloop

#endif  // IOLOOP_WAKER_WAKER_H_
