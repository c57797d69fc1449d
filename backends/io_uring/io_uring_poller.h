// The io_uring backend (Linux): level-triggered readiness from one-shot
// IORING_OP_POLL_ADD requests, re-armed after each report.
//
// How it is level-triggered: a one-shot poll armed on an fd that is already ready
// completes at once, so re-arming every reported fd on the next Poll() (after the
// loop's handlers ran) reports it again exactly while it stays ready. Register(),
// Modify() and Unregister() make no system call: they queue a poll, a poll update or
// a poll removal, and Poll() submits the whole batch in the same io_uring_enter() that
// waits. Each poll carries a registration generation in its user_data, so a completion
// for a registration already removed (or for an earlier user of a reused fd number) is
// dropped.
//
// Kernel requirements: io_uring with IORING_FEAT_EXT_ARG (Linux 5.11+). The ring uses
// IORING_SETUP_COOP_TASKRUN and SINGLE_ISSUER | DEFER_TASKRUN where the kernel has them
// (probed once per process, falling back to plainer flags); poll updates (5.13+) are
// used where they are seen to work, otherwise Modify() removes and re-adds the poll.
//
// Limits (see docs/backends.md):
// - Poll() should be called from one thread. Moving a poller to another thread, or
//   using it in a forked child, is detected (the kernel refuses a SINGLE_ISSUER ring to
//   other tasks) and costs one rebuild of the ring, re-arming every fd.
// - io_uring always reports a peer's half-close (POLLRDHUP), even on a registration not
//   watching kRead; such an fd is watched through a small internal epoll set instead,
//   so it never spins.
// - As with epoll, an fd closed while its poll is armed is not seen: the kernel keeps
//   the file open for the poll. An fd closed before its poll was submitted is reported
//   once as kError.
// - A one-shot poll records the readiness it woke for: data that arrived and was read
//   back between two Poll() calls (outside the handler) can still be reported as
//   kRead once, and the read then finds nothing (EAGAIN).
// - Destroying a ring makes the kernel interrupt the next blocking epoll_wait() of each
//   thread that used it (EINTR). Rings are therefore created on a short-lived thread
//   and kept for reuse, up to two per thread, until the thread exits.
// - Unregister() of an fd whose poll is armed makes one system call (the removal), so
//   that a close() right after really closes the file.
//
// Socket I/O (Poller::completion_io(), backends/completion_io.h) is offered where the
// kernel has provided-buffer rings and multishot receives (Linux 6.0+): each receive
// stays armed and takes buffers from one ring of 2 KiB buffers per poller, which is
// registered at the first receive with 64 buffers and grows, up to 1,024, when receives
// find it empty; elsewhere completion_io() is nullptr.

#ifndef IOLOOP_BACKENDS_IO_URING_IO_URING_POLLER_H_
#define IOLOOP_BACKENDS_IO_URING_IO_URING_POLLER_H_

#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "backends/poller.h"

namespace ioloop {

// NewIoUringPoller() creates an io_uring backend. Unavailable, naming the cause, where
// the kernel refuses io_uring (no io_uring or too old, kernel.io_uring_disabled, a
// seccomp profile, RLIMIT_MEMLOCK too low for the ring on kernels before 5.12).
// Thread-safe.
absl::StatusOr<std::unique_ptr<Poller>> NewIoUringPoller();

// NewIoUringPollerForTesting() is NewIoUringPoller() with a receive buffer ring that
// holds at most `recv_buffers` (a power of two, at most 32768) instead of 1,024, to run
// it dry in tests. The ring starts with up to 64 buffers and doubles, up to that bound,
// whenever receives find it empty.
absl::StatusOr<std::unique_ptr<Poller>> NewIoUringPollerForTesting(unsigned recv_buffers);

// IoUringRecvBuffersForTesting() is how many buffers `poller`'s receive buffer ring
// holds now (0 before its first receive). `poller` must come from NewIoUringPoller()
// or NewIoUringPollerForTesting(); call it on the thread that polls it.
unsigned IoUringRecvBuffersForTesting(Poller& poller);

// IoUringSupport() is OK if this kernel offers what the backend needs, else the
// Unavailable status NewIoUringPoller() would return. Probed once per process (the
// first call creates and destroys one small ring); thread-safe.
absl::Status IoUringSupport();

}  // namespace ioloop

#endif  // IOLOOP_BACKENDS_IO_URING_IO_URING_POLLER_H_
