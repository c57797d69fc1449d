// Makes the epoll backend this build's default; //backends:default links exactly one
// such file, chosen by platform and by --//backends:poller.

#include "backends/default_poller.h"
#include "backends/epoll/epoll_poller.h"
#include "backends/internal/backend_util.h"

namespace ioloop {

absl::string_view DefaultPollerName() { return "epoll"; }

std::unique_ptr<Poller> NewDefaultPoller() {
  return backend_internal::ValueOrDie(NewEpollPoller(), "NewDefaultPoller");
}

}  // namespace ioloop
