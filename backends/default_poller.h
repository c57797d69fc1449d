// Poller factories: the build's default backend, and any compiled-in backend by name.
//
// The default is chosen when building: Linux -> epoll; macOS, FreeBSD, OpenBSD ->
// kqueue; anything else -> select (NetBSD too: the @platforms this builds with has no
// constraint for it). The flag --//backends:poller=auto|epoll|kqueue|poll|select
// (from another workspace: --@ioloop//backends:poller=...) overrides it; a backend
// the platform cannot build is an analysis error.

#ifndef IOLOOP_BACKENDS_DEFAULT_POLLER_H_
#define IOLOOP_BACKENDS_DEFAULT_POLLER_H_

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "backends/poller.h"

namespace ioloop {

// NewDefaultPoller() creates the build's default backend. If the kernel refuses (out
// of descriptors or memory) it prints the reason and aborts; use NewPoller() to get
// that failure as a status instead.
std::unique_ptr<Poller> NewDefaultPoller();

// DefaultPollerName() is the Name() of what NewDefaultPoller() returns.
absl::string_view DefaultPollerName();

// NewPoller() creates the backend called `name` if this build has it: NotFound for a
// name not compiled in (e.g. "kqueue" on Linux), the errno if creation fails.
absl::StatusOr<std::unique_ptr<Poller>> NewPoller(absl::string_view name);

// AvailablePollers() names every backend NewPoller() can create in this build.
std::vector<absl::string_view> AvailablePollers();

}  // namespace ioloop

#endif  // IOLOOP_BACKENDS_DEFAULT_POLLER_H_
