// Event masks: what an fd is watched for, and what a poller found ready.
//
// The bits match Tornado's IOLoop.READ/WRITE/ERROR values, so ported code reads the
// same. kError is delivered whenever a backend can observe an error or hang-up on the
// fd, whether or not it was asked for; see docs/backends.md for each backend's limits.

#ifndef IOLOOP_BACKENDS_EVENTS_H_
#define IOLOOP_BACKENDS_EVENTS_H_

#include <cstdint>

namespace ioloop {

using EventMask = uint32_t;

inline constexpr EventMask kNone = 0;
inline constexpr EventMask kRead = 0x001;
inline constexpr EventMask kWrite = 0x004;
inline constexpr EventMask kError = 0x008;

// kAllEvents is every bit a caller may pass to Register() or Modify().
inline constexpr EventMask kAllEvents = kRead | kWrite | kError;

}  // namespace ioloop

#endif  // IOLOOP_BACKENDS_EVENTS_H_
