// Makes io_uring this build's default (--//backends:poller=io_uring). Where the kernel
// refuses io_uring, the default falls back to epoll and says why, once, on stderr.

#include <atomic>
#include <cstdio>

#include "backends/default_poller.h"
#include "backends/epoll/epoll_poller.h"
#include "backends/internal/backend_util.h"
#include "backends/io_uring/io_uring_poller.h"

namespace ioloop {
namespace {

void LogFallbackOnce(const absl::Status& why) {
  static std::atomic<bool> logged{false};
  if (logged.exchange(true)) return;
  std::fprintf(stderr, "ioloop: io_uring unavailable (%s); falling back to epoll\n",
               why.ToString().c_str());
}

}  // namespace

absl::string_view DefaultPollerName() {
  static const bool available = [] {
    const absl::Status support = IoUringSupport();
    if (!support.ok()) LogFallbackOnce(support);
    return support.ok();
  }();
  return available ? "io_uring" : "epoll";
}

std::unique_ptr<Poller> NewDefaultPoller() {
  absl::StatusOr<std::unique_ptr<Poller>> poller = NewIoUringPoller();
  if (poller.ok()) return *std::move(poller);
  LogFallbackOnce(poller.status());
  return backend_internal::ValueOrDie(NewEpollPoller(), "NewDefaultPoller");
}

}  // namespace ioloop
