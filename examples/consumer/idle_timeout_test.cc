// Drives the consumer's code with ioloop's fakes: a 10-minute timeout, zero real time.
#include "idle_timeout.h"

#include <chrono>

#include "gtest/gtest.h"
#include "testing/fake_clock.h"
#include "testing/fake_poller.h"

TEST(IdleTimeoutTest, FiresTenMinutesAfterTheLastTouchWithoutWaiting) {
  ioloop::testing::FakeClock clock;
  auto poller = std::make_unique<ioloop::testing::FakePoller>(&clock);
  ioloop::testing::FakePoller* fake = poller.get();
  ioloop::IOLoop::Options options;
  options.poller = std::move(poller);
  options.clock = &clock;
  ioloop::IOLoop loop(std::move(options));

  const absl::Time start = clock.Now();
  absl::Time idle_at;
  IdleTimeout idle(&loop, absl::Minutes(10), [&] {
    idle_at = clock.Now();
    loop.Stop();
  });
  // Activity on a connection (fd 100) after 3 minutes pushes the deadline back.
  ASSERT_TRUE(loop.AddHandler(
                      100, [&](int, ioloop::EventMask) { idle.Touch(); }, ioloop::kRead)
                  .ok());
  loop.AddTimeout(absl::Minutes(3), [&] { fake->Inject(100, ioloop::kRead); });

  const auto wall_start = std::chrono::steady_clock::now();
  loop.Start();
  EXPECT_EQ(idle_at - start, absl::Minutes(13));
  EXPECT_LT(std::chrono::steady_clock::now() - wall_start, std::chrono::seconds(5))
      << "fake time: no real waiting";
}
