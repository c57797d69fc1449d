// Checks: abort with a message when a broken invariant is found.
//
// Errors that can happen are absl::Status; a broken contract (starting a running
// loop, a loop-thread-only call from another thread, a fake poller asked to sleep
// forever) is a check. IOLOOP_CHECK is always on; IOLOOP_DCHECK only in builds
// without NDEBUG (free in --config=opt). Both print the file, line, condition and
// message to stderr, then abort. Debian's Abseil has no absl/log, hence this header.
//
//   IOLOOP_CHECK(period > absl::ZeroDuration(), "the period must be positive");
//   IOLOOP_CHECK(ok, absl::StrCat("cannot watch fd ", fd));   // any string-like message

#ifndef IOLOOP_BASE_CHECK_H_
#define IOLOOP_BASE_CHECK_H_

#include "absl/base/attributes.h"
#include "absl/base/optimization.h"
#include "absl/strings/string_view.h"

namespace ioloop::base_internal {

// CheckFailed() prints the failure and aborts. Out of line, so a check costs one
// predictable branch where it stands.
[[noreturn]] ABSL_ATTRIBUTE_NOINLINE void CheckFailed(const char* file, int line,
                                                      const char* condition,
                                                      absl::string_view message);

}  // namespace ioloop::base_internal

// IOLOOP_CHECK(condition, message): aborts with `message` (anything that converts to
// absl::string_view) unless `condition` holds. The message is only evaluated on
// failure.
#define IOLOOP_CHECK(condition, message)                                               \
  do {                                                                                 \
    if (ABSL_PREDICT_FALSE(!(condition))) {                                            \
      ::ioloop::base_internal::CheckFailed(__FILE__, __LINE__, #condition, (message)); \
    }                                                                                  \
  } while (false)

// IOLOOP_DCHECK(condition, message): IOLOOP_CHECK in debug builds; in NDEBUG builds
// neither argument is evaluated.
#ifdef NDEBUG
#define IOLOOP_DCHECK(condition, message) \
  do {                                    \
    if (false) {                          \
      (void)(condition);                  \
      (void)(message);                    \
    }                                     \
  } while (false)
#else
#define IOLOOP_DCHECK(condition, message) IOLOOP_CHECK(condition, message)
#endif

#endif  // IOLOOP_BASE_CHECK_H_
