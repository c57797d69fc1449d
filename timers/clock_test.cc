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

TEST(RealClockTest, IsOneProcessWideInstance) { EXPECT_EQ(&RealClock(), &RealClock()); }

}  // namespace
}  // namespace ioloop
