// Clock: where the loop reads the time.
//
// The loop never calls absl::Now(): it asks an injected Clock, so tests can run the
// real loop on testing::FakeClock and move time by hand.
//
// RealClock() is monotonic and reads on the Unix epoch. It is CLOCK_MONOTONIC plus an
// offset fixed once, at first use, to absl::Now() - CLOCK_MONOTONIC. So:
//   - it never steps backwards or jumps when the wall clock is stepped (NTP, a user
//     changing the date): timeouts measured on it stay exact;
//   - its readings look like wall-clock times, so Tornado's `time.time() + 5` ports
//     directly: `loop.AddTimeout(absl::Now() + absl::Seconds(5), cb)` fires about 5 s
//     later. That deadline is wall-clock based, so it is off by however much the wall
//     clock has been stepped or slewed since the offset was fixed; a delay
//     (`AddTimeout(absl::Seconds(5), cb)`) is not affected at all.
// Precision: nanoseconds as absl::Time; the resolution is CLOCK_MONOTONIC's.
// CoarseNowNanos() reads CLOCK_MONOTONIC_COARSE on Linux: cheaper, with one kernel
// tick of resolution. The offset is read once, so two processes' RealClock() can
// disagree by the error of absl::Now() when each fixed it.

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

  // CoarseNowNanos() is NowNanos() from a cheaper, coarser source, for statistics
  // that sum many short intervals (the loop's idle time): it may lag NowNanos() by up
  // to the source's tick and advances in ticks. Never use it for deadlines. The
  // default is NowNanos().
  virtual int64_t CoarseNowNanos() { return NowNanos(); }
};

// RealClock() returns the process-wide monotonic clock on the Unix epoch (see the
// top of this file). Thread-safe; the returned object lives for the whole process.
Clock& RealClock();

}  // namespace ioloop

#endif  // IOLOOP_TIMERS_CLOCK_H_
