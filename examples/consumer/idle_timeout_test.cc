// Drives the consumer's code with ioloop's fakes: a 10-minute timeout, zero real time.
#include "idle_timeout.h"

#include <chrono>

#include "gtest/gtest.h"
#include "testing/fake_loop.h"

TEST(IdleTimeoutTest, FiresTenMinutesAfterTheLastTouchWithoutWaiting) {
  ioloop::testing::FakeLoop fake;  // A real IOLoop on a fake poller and a fake clock.
  ioloop::IOLoop& loop = fake.loop();

  absl::Time idle_at;
  IdleTimeout idle(&loop, absl::Minutes(10), [&] {
    idle_at = fake.clock().Now();
    loop.Stop();
  });
  // Activity on a connection after 3 minutes pushes the deadline back.
  const int connection = fake.Fd(1);
  ASSERT_TRUE(loop.AddHandler(
                      connection, [&](int, ioloop::EventMask) { idle.Touch(); }, ioloop::kRead)
                  .ok());
  loop.AddTimeout(absl::Minutes(3), [&] { fake.poller().Inject(connection, ioloop::kRead); });

  const auto wall_start = std::chrono::steady_clock::now();
  loop.Start();
  EXPECT_EQ(idle_at - fake.start(), absl::Minutes(13));
  EXPECT_LT(std::chrono::steady_clock::now() - wall_start, std::chrono::seconds(5))
      << "fake time: no real waiting";
}
