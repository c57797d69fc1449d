// The epoll(7) backend: level-triggered, Linux only.

#ifndef IOLOOP_BACKENDS_EPOLL_EPOLL_POLLER_H_
#define IOLOOP_BACKENDS_EPOLL_EPOLL_POLLER_H_

#include <memory>

#include "absl/status/statusor.h"
#include "backends/poller.h"

namespace ioloop {

// NewEpollPoller() creates an epoll backend on a close-on-exec epoll fd. One
// epoll_ctl() per Register/Modify/Unregister, one epoll_wait() per Poll().
//
// Limit: epoll watches open file descriptions, not fd numbers. If a registered fd is
// dup()ed (or shared with a child after fork) and then closed without Unregister(),
// the kernel keeps reporting it; this backend drops events for fd numbers it does not
// hold, but always Unregister() before close() (see docs/backends.md).
absl::StatusOr<std::unique_ptr<Poller>> NewEpollPoller();

}  // namespace ioloop

#endif  // IOLOOP_BACKENDS_EPOLL_EPOLL_POLLER_H_
