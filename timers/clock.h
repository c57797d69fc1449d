// Clock: where the loop reads the time.
//
// The loop never calls absl::Now(): it asks an injected Clock, so tests can run the
// real loop on testing::FakeClock and move time by hand. RealClock() is monotonic, so
// timeouts are unaffected by wall-clock steps (NTP, a user changing the date).

#ifndef IOLOOP_TIMERS_CLOCK_H_
#define IOLOOP_TIMERS_CLOCK_H_

#include <cstdint>

#include "absl/time/time.h"

namespace ioloop {

// Clock is the source of "now" for the loop and its timers.
//
// Thread-safety: implementations are called from the loop's thread only, unless they
// document more.
class Clock {
 public:
  virtual ~Clock() = default;

  // Now() returns the current time. Successive calls never go backwards.
  virtual absl::Time Now() = 0;

  // NowNanos() is Now() as nanoseconds since the Unix epoch (saturating), for the
  // loop's per-timer path. Override it when the clock can answer without absl::Time
  // arithmetic; the default converts Now().
  virtual int64_t NowNanos() { return absl::ToUnixNanos(Now()); }
};

// RealClock() returns the process-wide monotonic clock (CLOCK_MONOTONIC).
//
// Its absl::Time values count from an unspecified origin (the system's boot on
// Linux), not from the Unix epoch: compare and subtract them, do not format them as
// dates. Thread-safe; the returned object lives for the whole process.
Clock& RealClock();

}  // namespace ioloop

#endif  // IOLOOP_TIMERS_CLOCK_H_
