#include "timers/clock.h"

#include "gtest/gtest.h"

namespace ioloop {
namespace {

TEST(RealClockTest, NeverGoesBackwards) {
  Clock& clock = RealClock();
  absl::Time previous = clock.Now();
  for (int i = 0; i < 100000; ++i) {
    const absl::Time now = clock.Now();
    ASSERT_GE(now, previous);
    previous = now;
  }
}

TEST(RealClockTest, NowNanosAgreesWithNow) {
  Clock& clock = RealClock();
  const int64_t before = absl::ToUnixNanos(clock.Now());
  const int64_t nanos = clock.NowNanos();
  const int64_t after = absl::ToUnixNanos(clock.Now());
  EXPECT_LE(before, nanos);
  EXPECT_LE(nanos, after);
}

TEST(RealClockTest, IsOneProcessWideInstance) { EXPECT_EQ(&RealClock(), &RealClock()); }

}  // namespace
}  // namespace ioloop
