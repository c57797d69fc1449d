// FakeClock: a Clock that moves only when told to, for deterministic timer tests.
//
//   testing::FakeClock clock;
//   IOLoop loop({.poller = std::make_unique<testing::FakePoller>(&clock), .clock = &clock});
//   loop.AddTimeout(absl::Minutes(10), [&] { ... });   // fires without waiting
//
// An attached FakePoller advances it by each poll timeout, so a loop on both runs
// timers in zero real time.

#ifndef IOLOOP_TESTING_FAKE_CLOCK_H_
#define IOLOOP_TESTING_FAKE_CLOCK_H_

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"
#include "base/mutex.h"
#include "timers/clock.h"

namespace ioloop::testing {

// FakeClock is thread-safe: a test thread may move it while the loop reads it.
class FakeClock final : public Clock {
 public:
  // The default start is an arbitrary fixed instant, the same in every run.
  explicit FakeClock(absl::Time start = absl::FromUnixSeconds(1'000'000'000));

  absl::Time Now() override;

  // Advance() moves time forward by `delta`; a negative delta is a check failure.
  void Advance(absl::Duration delta);

  // Set() moves time to `time`; moving backwards is a check failure (the loop relies
  // on a monotonic clock).
  void Set(absl::Time time);

 private:
  Mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ioloop::testing

#endif  // IOLOOP_TESTING_FAKE_CLOCK_H_
