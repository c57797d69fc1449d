// Makes the kqueue backend this build's default; //backends:default links exactly one
// such file, chosen by platform and by --//backends:poller.

#include "backends/default_poller.h"
#include "backends/internal/backend_util.h"
#include "backends/kqueue/kqueue_poller.h"

namespace ioloop {

absl::string_view DefaultPollerName() { return "kqueue"; }

std::unique_ptr<Poller> NewDefaultPoller() {
  return backend_internal::ValueOrDie(NewKqueuePoller(), "NewDefaultPoller");
}

}  // namespace ioloop
