// RunOnce() (embedding the loop in another one), Metrics(), and the timer precision
// contract (AddTimeout(delay) counts from the loop's cached time), on the fakes and on
// every real backend.

#include <unistd.h>

#include <string>
#include <thread>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "ioloop/io_loop.h"
#include "testing/backends.h"
#include "testing/fake_loop.h"
#include "testing/fd_pairs.h"
#include "testing/real_loop.h"

namespace ioloop {
namespace {

using ::testing::ElementsAre;

class EmbeddingTest : public ::testing::Test {
 protected:
  IOLoop& loop() { return fake_.loop(); }
  testing::FakeLoop fake_;
};

// --- RunOnce --------------------------------------------------------------------------

TEST_F(EmbeddingTest, RunOnceRunsOneIterationAndPollsAtMostMaxWait) {
  std::vector<std::string> ran;
  loop().AddCallback([&] { ran.push_back("callback"); });
  loop().AddTimeout(absl::Seconds(10), [&] { ran.push_back("timeout"); });
  EXPECT_TRUE(loop().RunOnce(absl::Milliseconds(16)));
  EXPECT_THAT(ran, ElementsAre("callback"));
  EXPECT_EQ(fake_.poller().poll_count(), 1);
  EXPECT_EQ(fake_.poller().last_timeout(), absl::Milliseconds(16)) << "capped by max_wait";
  EXPECT_EQ(fake_.clock().Now() - fake_.start(), absl::Milliseconds(16));
  EXPECT_FALSE(loop().Running());
}

TEST_F(EmbeddingTest, RunOnceWithZeroWaitNeverBlocks) {
  loop().AddTimeout(absl::Seconds(10), [] {});
  EXPECT_TRUE(loop().RunOnce(absl::ZeroDuration()));
  EXPECT_EQ(fake_.poller().last_timeout(), absl::ZeroDuration());
  EXPECT_EQ(fake_.clock().Now(), fake_.start());
}

TEST_F(EmbeddingTest, RunOnceWaitsNoLongerThanTheNextDeadline) {
  bool fired = false;
  loop().AddTimeout(absl::Milliseconds(5), [&] { fired = true; });
  EXPECT_TRUE(loop().RunOnce(absl::Seconds(1)));
  EXPECT_EQ(fake_.poller().last_timeout(), absl::Milliseconds(5));
  EXPECT_FALSE(fired) << "it becomes due during the poll, and fires on the next iteration";
  EXPECT_TRUE(loop().RunOnce(absl::ZeroDuration()));
  EXPECT_TRUE(fired);
}

TEST_F(EmbeddingTest, RunOnceDrivesHandlers) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  int calls = 0;
  ASSERT_TRUE(loop()
                  .AddHandler(
                      fds[0], [&](int, EventMask) { ++calls; }, kRead)
                  .ok());
  fake_.poller().Inject(fds[0], kRead);
  EXPECT_TRUE(loop().RunOnce(absl::ZeroDuration()));
  EXPECT_EQ(calls, 1);
  close(fds[0]);
  close(fds[1]);
}

TEST_F(EmbeddingTest, RunOnceReturnsFalseOnceStoppedAndFinishesLikeStart) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  std::vector<std::string> ran;
  ASSERT_TRUE(loop()
                  .AddHandler(
                      fds[0],
                      [&](int, EventMask) {
                        loop().Stop();
                        loop().AddCallback(
                            [&] { ran.push_back("queued by the stopping handler"); });
                      },
                      kRead)
                  .ok());
  fake_.poller().Inject(fds[0], kRead);
  EXPECT_FALSE(loop().RunOnce(absl::ZeroDuration()));
  EXPECT_THAT(ran, ElementsAre("queued by the stopping handler"));
  // The stop was consumed: the embedding loop may go on calling RunOnce().
  EXPECT_TRUE(loop().RunOnce(absl::ZeroDuration()));
  close(fds[0]);
  close(fds[1]);
}

TEST_F(EmbeddingTest, StopBeforeRunOnceIsConsumedWithoutPolling) {
  loop().Stop();
  EXPECT_FALSE(loop().RunOnce(absl::Seconds(1)));
  EXPECT_EQ(fake_.poller().poll_count(), 0);
  EXPECT_TRUE(loop().RunOnce(absl::ZeroDuration()));
}

TEST_F(EmbeddingTest, RunOnceOnAClosedLoopReturnsFalse) {
  ASSERT_TRUE(loop().Close().ok());
  EXPECT_FALSE(loop().RunOnce(absl::ZeroDuration()));
}

// --- Metrics ---------------------------------------------------------------------------

TEST_F(EmbeddingTest, MetricsCountWhatTheLoopDid) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  ASSERT_TRUE(loop()
                  .AddHandler(
                      fds[0], [](int, EventMask) {}, kRead)
                  .ok());
  for (int i = 0; i < 3; ++i) loop().AddCallback([] {});
  loop().AddTimeout(absl::Seconds(1), [] {});
  loop().AddTimeout(absl::Seconds(2), [] {});
  fake_.poller().Inject(fds[0], kRead);
  // Iteration 1: 3 callbacks, poll (the event), dispatch. Iteration 2: poll 1 s idle.
  // Iteration 3: timeout 1, poll 1 s. Iteration 4: timeout 2, then a callback stops.
  loop().AddTimeout(absl::Seconds(2), [&] { loop().Stop(); });
  loop().Start();
  const LoopMetrics m = loop().Metrics();
  EXPECT_EQ(m.callbacks_run, 3u);
  EXPECT_EQ(m.timeouts_fired, 3u);
  EXPECT_EQ(m.events_dispatched, 1u);
  EXPECT_EQ(m.iterations, 4u);
  EXPECT_EQ(m.wakeups_sent, 0u);
  EXPECT_EQ(m.signal_callbacks_dropped, 0u);
  EXPECT_EQ(m.idle_time, absl::Seconds(2)) << "the fake clock advanced only while polling";
  close(fds[0]);
  close(fds[1]);
}

// --- The timer precision contract --------------------------------------------------------

TEST_F(EmbeddingTest, DelayCountsFromTheCachedTimeUnlessUpdated) {
  absl::Time first_fired, cached_fired, updated_fired;
  absl::Time handler_started;
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  ASSERT_TRUE(
      loop()
          .AddHandler(
              fds[0],
              [&](int, EventMask) {
                handler_started = fake_.clock().Now();
                // The first delay after the poll reads the clock...
                loop().AddTimeout(absl::Seconds(10), [&] { first_fired = fake_.clock().Now(); });
                // ...a slow handler: 5 s pass while it runs...
                fake_.clock().Advance(absl::Seconds(5));
                // ...later delays in the same batch count from that reading...
                loop().AddTimeout(absl::Seconds(10), [&] { cached_fired = fake_.clock().Now(); });
                // ...unless the handler refreshes it.
                loop().UpdateTime();
                loop().AddTimeout(absl::Seconds(10), [&] {
                  updated_fired = fake_.clock().Now();
                  loop().Stop();
                });
              },
              kRead)
          .ok());
  fake_.poller().Inject(fds[0], kRead);
  loop().AddTimeout(absl::Hours(1), [] {});
  loop().Start();
  EXPECT_EQ(first_fired - handler_started, absl::Seconds(10));
  EXPECT_EQ(cached_fired - handler_started, absl::Seconds(10))
      << "counted from the reading the batch's first delay took";
  EXPECT_EQ(updated_fired - handler_started, absl::Seconds(15)) << "counted from UpdateTime()";
  close(fds[0]);
  close(fds[1]);
}

TEST_F(EmbeddingTest, OutsideTheLoopDelaysCountFromNow) {
  fake_.clock().Advance(absl::Minutes(3));  // Setup took a while before Start().
  absl::Time fired;
  loop().AddTimeout(absl::Seconds(1), [&] {
    fired = fake_.clock().Now();
    loop().Stop();
  });
  loop().Start();
  EXPECT_EQ(fired - fake_.start(), absl::Minutes(3) + absl::Seconds(1));
}

// --- On every real backend -----------------------------------------------------------------

class RealEmbeddingTest : public testing::RealLoopFixture {};

TEST_P(RealEmbeddingTest, RunOnceServesASocketFromAnotherLoop) {
  int fds[2];
  ASSERT_TRUE(testing::MakeSocketPair(fds, testing::FdMode::kBlocking).ok());
  int echoed = 0;
  ASSERT_TRUE(loop_
                  ->AddHandler(
                      fds[0],
                      [&](int fd, EventMask) {
                        char c;
                        if (read(fd, &c, 1) == 1) ++echoed;
                      },
                      kRead)
                  .ok());
  // The "other" loop: a frame loop that calls RunOnce() with no wait between frames.
  for (int frame = 0; frame < 100; ++frame) {
    ASSERT_EQ(write(fds[1], "f", 1), 1);
    while (echoed <= frame) ASSERT_TRUE(loop_->RunOnce(absl::Milliseconds(100)));
  }
  EXPECT_EQ(echoed, 100);
  const LoopMetrics m = loop_->Metrics();
  EXPECT_EQ(m.events_dispatched, 100u);
  EXPECT_GE(m.iterations, 100u);
  close(fds[0]);
  close(fds[1]);
}

TEST_P(RealEmbeddingTest, RunOnceReturnsWhenMaxWaitPasses) {
  const absl::Time start = absl::Now();
  EXPECT_TRUE(loop_->RunOnce(absl::Milliseconds(20)));
  const absl::Duration took = absl::Now() - start;
  EXPECT_GE(took, absl::Milliseconds(19));
  EXPECT_LT(took, absl::Seconds(20));
  EXPECT_GE(loop_->Metrics().idle_time, absl::ZeroDuration());
}

TEST_P(RealEmbeddingTest, AStopFromAnotherThreadEndsRunOnce) {
  std::thread other([&] { loop_->Stop(); });
  other.join();
  EXPECT_FALSE(loop_->RunOnce(absl::Seconds(30)));
}

TEST_P(RealEmbeddingTest, ATimeoutNeverFiresBeforeItsDelay) {
  // Generous bounds: the point is "never early", measured from before the call.
  std::vector<absl::Duration> early;
  int fired = 0;
  for (int i = 0; i < 20; ++i) {
    const absl::Time added = absl::Now();
    const absl::Duration delay = absl::Milliseconds(1 + i % 5);
    loop_->AddTimeout(delay, [&, added, delay] {
      ++fired;
      if (absl::Now() - added < delay) early.push_back(absl::Now() - added);
      if (fired == 20) loop_->Stop();
    });
  }
  loop_->Start();
  EXPECT_EQ(fired, 20);
  EXPECT_TRUE(early.empty()) << early.size() << " fired early";
}

INSTANTIATE_TEST_SUITE_P(EveryBackend, RealEmbeddingTest,
                         ::testing::ValuesIn(testing::RealBackends()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace ioloop
