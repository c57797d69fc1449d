
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "backends/default_poller.h"
#include "backends/poll/poll_poller.h"
#include "backends/select/select_poller.h"
#ifdef IOLOOP_HAVE_EPOLL
#include "backends/epoll/epoll_poller.h"
#endif
#ifdef IOLOOP_HAVE_IO_URING
#include "backends/io_uring/io_uring_poller.h"
#endif
#ifdef IOLOOP_HAVE_KQUEUE
#include "backends/kqueue/kqueue_poller.h"
#endif

namespace ioloop {

std::vector<absl::string_view> AvailablePollers() {
  std::vector<absl::string_view> names;
#ifdef IOLOOP_HAVE_EPOLL
  names.push_back("epoll");
#endif
#ifdef IOLOOP_HAVE_IO_URING
  if (IoUringSupport().ok()) names.push_back("io_uring");  // Compiled in, but may be refused.
#endif
#ifdef IOLOOP_HAVE_KQUEUE
  names.push_back("kqueue");
#endif
  names.push_back("poll");
  names.push_back("select");
  return names;
}

absl::StatusOr<std::unique_ptr<Poller>> NewPoller(absl::string_view name) {
#ifdef IOLOOP_HAVE_EPOLL
  if (name == "epoll") return NewEpollPoller();
#endif
#ifdef IOLOOP_HAVE_IO_URING
  if (name == "io_uring") return NewIoUringPoller();
#endif
#ifdef IOLOOP_HAVE_KQUEUE
  if (name == "kqueue") return NewKqueuePoller();
#endif
  if (name == "poll") return NewPollPoller();
  if (name == "select") return NewSelectPoller();
  return absl::NotFoundError(absl::StrCat("no poller backend \"", name, "\" in this build; have: ",
                                          absl::StrJoin(AvailablePollers(), ", ")));
}

}  // namespace ioloop
