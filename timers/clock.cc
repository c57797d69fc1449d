#include "timers/clock.h"

#include <time.h>

namespace ioloop {
namespace {

class MonotonicClock final : public Clock {
 public:
  absl::Time Now() override {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return absl::UnixEpoch() + absl::DurationFromTimespec(ts);
  }
  int64_t NowNanos() override {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
  }
};

}  // namespace

Clock& RealClock() {
  static MonotonicClock* const clock = new MonotonicClock();
  return *clock;
}

}  // namespace ioloop
