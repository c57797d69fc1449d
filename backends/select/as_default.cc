// Makes the select backend this build's default; //backends:default links exactly one
// such file, chosen by platform and by --//backends:poller.

#include "backends/default_poller.h"
#include "backends/internal/backend_util.h"
#include "backends/select/select_poller.h"

namespace ioloop {

absl::string_view DefaultPollerName() { return "select"; }

std::unique_ptr<Poller> NewDefaultPoller() {
  return backend_internal::ValueOrDie(NewSelectPoller(), "NewDefaultPoller");
}

}  // namespace ioloop
