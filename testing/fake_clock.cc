#include "testing/fake_clock.h"

#include "base/check.h"

namespace ioloop::testing {

FakeClock::FakeClock(absl::Time start) : now_(start) {}

absl::Time FakeClock::Now() {
  MutexLock lock(mu_);
  return now_;
}

void FakeClock::Advance(absl::Duration delta) {
  IOLOOP_CHECK(delta >= absl::ZeroDuration(), "FakeClock::Advance: time never goes backwards");
  MutexLock lock(mu_);
  now_ += delta;
}

void FakeClock::Set(absl::Time time) {
  MutexLock lock(mu_);
  IOLOOP_CHECK(time >= now_, "FakeClock::Set: time never goes backwards");
  now_ = time;
}

}  // namespace ioloop::testing
