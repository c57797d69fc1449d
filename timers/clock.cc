#include "timers/clock.h"

#include <time.h>

#include "absl/time/clock.h"

namespace ioloop {
namespace {

int64_t Nanos(clockid_t id) {
  timespec ts;
  clock_gettime(id, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

int64_t MonotonicNanos() { return Nanos(CLOCK_MONOTONIC); }

#ifdef CLOCK_MONOTONIC_COARSE
int64_t CoarseMonotonicNanos() { return Nanos(CLOCK_MONOTONIC_COARSE); }
#else
int64_t CoarseMonotonicNanos() { return Nanos(CLOCK_MONOTONIC); }
#endif

class MonotonicClock final : public Clock {
 public:
  // The offset that puts CLOCK_MONOTONIC on the Unix epoch, fixed now.
  MonotonicClock() : offset_ns_(absl::GetCurrentTimeNanos() - MonotonicNanos()) {}

  absl::Time Now() override { return absl::FromUnixNanos(NowNanos()); }
  int64_t NowNanos() override { return MonotonicNanos() + offset_ns_; }
  int64_t CoarseNowNanos() override { return CoarseMonotonicNanos() + offset_ns_; }

 private:
  const int64_t offset_ns_;
};

}  // namespace

Clock& RealClock() {
  static MonotonicClock* const clock = new MonotonicClock();
  return *clock;
}

}  // namespace ioloop
