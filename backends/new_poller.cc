// The poller factories. One source for every build: //backends:default names the
// default backend with IOLOOP_DEFAULT_POLLER (from --//backends:poller) or else
// IOLOOP_PLATFORM_POLLER, and says with IOLOOP_HAVE_<BACKEND> which optional backends
// are compiled in.

#include <atomic>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "backends/default_poller.h"
#include "backends/poll/poll_poller.h"
#include "backends/select/select_poller.h"
#include "base/check.h"
#ifdef IOLOOP_HAVE_EPOLL
#include "backends/epoll/epoll_poller.h"
#endif
#ifdef IOLOOP_HAVE_IO_URING
#include "backends/io_uring/io_uring_poller.h"
#endif
#ifdef IOLOOP_HAVE_KQUEUE
#include "backends/kqueue/kqueue_poller.h"
#endif

#if !defined(IOLOOP_DEFAULT_POLLER)
#if !defined(IOLOOP_PLATFORM_POLLER)
#error "IOLOOP_PLATFORM_POLLER must name the platform's backend (//backends:default sets it)"
#endif
#define IOLOOP_DEFAULT_POLLER IOLOOP_PLATFORM_POLLER
#endif
#define IOLOOP_INTERNAL_STRINGIFY(name) #name
#define IOLOOP_INTERNAL_NAME(name) IOLOOP_INTERNAL_STRINGIFY(name)

namespace ioloop {
namespace {

constexpr absl::string_view kBuildDefault = IOLOOP_INTERNAL_NAME(IOLOOP_DEFAULT_POLLER);

#ifdef IOLOOP_HAVE_IO_URING
void LogIoUringFallbackOnce(const absl::Status& why) {
  static std::atomic<bool> logged{false};
  if (logged.exchange(true)) return;
  std::fprintf(stderr, "ioloop: io_uring unavailable (%s); falling back to epoll\n",
               why.ToString().c_str());
}
#endif

// The default actually in use: the build's choice, except that io_uring, the one
// backend a kernel may refuse at run time, falls back to epoll (logged once).
absl::string_view EffectiveDefault() {
#ifdef IOLOOP_HAVE_IO_URING
  if (kBuildDefault == "io_uring") {
    static const bool available = [] {
      const absl::Status support = IoUringSupport();
      if (!support.ok()) LogIoUringFallbackOnce(support);
      return support.ok();
    }();
    return available ? "io_uring" : "epoll";
  }
#endif
  return kBuildDefault;
}

}  // namespace

absl::string_view DefaultPollerName() { return EffectiveDefault(); }

std::unique_ptr<Poller> NewDefaultPoller() {
  absl::StatusOr<std::unique_ptr<Poller>> poller = NewPoller(EffectiveDefault());
#ifdef IOLOOP_HAVE_IO_URING
  if (!poller.ok() && kBuildDefault == "io_uring") {
    // Refused after the probe succeeded (e.g. out of locked memory): same fallback.
    LogIoUringFallbackOnce(poller.status());
    poller = NewPoller("epoll");
  }
#endif
  IOLOOP_CHECK(poller.ok(), absl::StrCat("NewDefaultPoller: ", poller.status().ToString()));
  return *std::move(poller);
}

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
