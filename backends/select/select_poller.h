// The select(2) backend: available everywhere, limited to fds below FD_SETSIZE.

#ifndef IOLOOP_BACKENDS_SELECT_SELECT_POLLER_H_
#define IOLOOP_BACKENDS_SELECT_SELECT_POLLER_H_

#include <memory>

#include "absl/status/statusor.h"
#include "backends/poller.h"

namespace ioloop {

// NewSelectPoller() creates a select(2) backend.
//
// Limits: Register() of an fd >= FD_SETSIZE is InvalidArgument (never memory
// corruption). select has no hang-up condition: a peer closing shows as readable (the
// read returns EOF), never as kError, and an fd watched for nothing reports nothing.
// A registered fd that is closed reports kError until unregistered.
absl::StatusOr<std::unique_ptr<Poller>> NewSelectPoller();

}  // namespace ioloop

#endif  // IOLOOP_BACKENDS_SELECT_SELECT_POLLER_H_
