// IOLOOP_CHECK: abort with a message when an invariant the caller broke is found.
//
// Errors that can happen are absl::Status; a broken contract (starting a running
// loop, a fake poller asked to sleep forever) is a check, printed to stderr with the
// file and line before aborting. Kept tiny because Debian's Abseil has no absl/log.

#ifndef IOLOOP_IOLOOP_INTERNAL_CHECK_H_
#define IOLOOP_IOLOOP_INTERNAL_CHECK_H_

#include <cstdio>
#include <cstdlib>

#define IOLOOP_CHECK(condition, message)                                              \
  do {                                                                                \
    if (!(condition)) {                                                               \
      std::fprintf(stderr, "%s:%d: check failed: %s: %s\n", __FILE__, __LINE__,       \
                   #condition, (message));                                            \
      std::abort();                                                                   \
    }                                                                                 \
  } while (false)

#endif  // IOLOOP_IOLOOP_INTERNAL_CHECK_H_
