// Poller: the small interface every readiness backend implements.
//
// A Poller watches file descriptors, one registration per fd, level-triggered, and
// reports which are ready. It knows nothing of callbacks or timers: the loop owns
// those and computes the timeout it passes to Poll(). Backends live in their own
// targets (//backends/epoll, //backends/kqueue, //backends/poll, //backends/select);
// backends/default_poller.h creates them.
//
// Reporting rule shared by every backend: when a backend sees an error or hang-up on
// an fd it reports kError, plus whichever of kRead/kWrite the fd is registered for,
// so the handler's next read() or write() meets the EOF or the error itself.
//
// Thread-safety: a Poller is used from one thread (the loop's). Poll() may be
// interrupted from another thread only by making a watched fd ready (see //waker).

#ifndef IOLOOP_BACKENDS_POLLER_H_
#define IOLOOP_BACKENDS_POLLER_H_

#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "backends/completion_io.h"
#include "backends/events.h"

namespace ioloop {

// PollEvent is one ready fd and the events found on it.
struct PollEvent {
  int fd;
  EventMask events;
  friend bool operator==(const PollEvent&, const PollEvent&) = default;
};

class Poller {
 public:
  virtual ~Poller() = default;

  // Register() starts watching `fd` for `events` (kError is implied). Errors:
  // InvalidArgument for a negative fd, one the backend cannot hold (select: fd >=
  // FD_SETSIZE) or bits outside kAllEvents; AlreadyExists if `fd` is registered; the
  // errno otherwise (e.g. a closed fd). Messages name the fd.
  virtual absl::Status Register(int fd, EventMask events) = 0;

  // Modify() replaces the events `fd` is watched for. NotFound if `fd` is not
  // registered.
  virtual absl::Status Modify(int fd, EventMask events) = 0;

  // Unregister() stops watching `fd`. NotFound if `fd` is not registered. Succeeds
  // for an fd that was closed while registered (the kernel already forgot it).
  virtual absl::Status Unregister(int fd) = 0;

  // Poll() waits at most `timeout` (absl::InfiniteDuration(): no limit; zero or
  // negative: do not block) and appends one PollEvent per ready fd to `ready`.
  // Timeouts are rounded up to the backend's resolution, never down, so a caller
  // waiting for a deadline does not wake early and spin. A wait interrupted by a
  // signal (EINTR) returns OK with no events.
  virtual absl::Status Poll(absl::Duration timeout, std::vector<PollEvent>& ready) = 0;

  // Name() is the backend's name: "epoll", "kqueue", "poll", "select", "fake", ...
  virtual absl::string_view Name() const = 0;

  // completion_io() is the backend's CompletionIo (backends/completion_io.h): socket
  // reads and writes the kernel performs, submitted and reaped by Poll(). nullptr for
  // readiness-only backends (the default). Valid as long as the poller; same thread.
  virtual CompletionIo* completion_io() { return nullptr; }
};

}  // namespace ioloop

#endif  // IOLOOP_BACKENDS_POLLER_H_
