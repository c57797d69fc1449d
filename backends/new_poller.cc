
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "backends/default_poller.h"
#include "backends/poll/poll_poller.h"
#include "backends/select/select_poller.h"
#ifdef IOLOOP_HAVE_EPOLL
#include "backends/epoll/epoll_poller.h"
#endif
#ifdef IOLOOP_HAVE_KQUEUE
#include "backends/kqueue/kqueue_poller.h"
#endif

namespace ioloop {

std::vector<absl::string_view> AvailablePollers() {
  return {
#ifdef IOLOOP_HAVE_EPOLL
      "epoll",
#endif
#ifdef IOLOOP_HAVE_KQUEUE
      "kqueue",
#endif
      "poll", "select"};
}

absl::StatusOr<std::unique_ptr<Poller>> NewPoller(absl::string_view name) {
#ifdef IOLOOP_HAVE_EPOLL
  if (name == "epoll") return NewEpollPoller();
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
