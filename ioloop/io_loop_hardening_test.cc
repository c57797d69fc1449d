// The loop under abuse: destructors that re-enter it, arithmetic at the edges,
// handles from another loop, construction failures, throwing hooks, the Stop
// contract, the clock's epoch, thread affinity and wake-up accounting. Each test
// names the class of bug it guards against (docs/reliability.md lists them).

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <climits>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "backends/default_poller.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "ioloop/io_loop.h"
#include "ioloop/periodic_callback.h"
#include "testing/fake_loop.h"

namespace ioloop {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// OnDestroy() returns a token that runs `f` when its last copy is destroyed: captured
// by a callable the loop holds, `f` runs when the loop destroys that callable.
template <typename F>
std::shared_ptr<void> OnDestroy(F f) {
  return std::shared_ptr<void>(nullptr, [f = std::move(f)](void*) mutable { f(); });
}

// Where a callable keeps its state: inline in the loop's slot, or on the heap (a
// capture too large for the inline buffer). The re-entrancy bugs differed by storage.
enum class Storage { kInline, kHeap };

Callback Holding(Storage storage, std::shared_ptr<void> token, std::function<void()> body = {}) {
  if (storage == Storage::kInline) {
    return [token = std::move(token), body = std::move(body)] {
      if (body) body();
    };
  }
  return [token = std::move(token), body = std::move(body), pad = std::array<char, 256>{}] {
    (void)pad;
    if (body) body();
  };
}

class HardeningTest : public ::testing::Test {
 protected:
  IOLoop& loop() { return fake_.loop(); }
  testing::FakeLoop fake_;
};

// The re-entrancy tests run with inline and with heap-stored callables.
class ReentrancyTest : public HardeningTest, public ::testing::WithParamInterface<Storage> {};

INSTANTIATE_TEST_SUITE_P(Storage, ReentrancyTest,
                         ::testing::Values(Storage::kInline, Storage::kHeap), [](const auto& info) {
                           return info.param == Storage::kInline ? "Inline" : "Heap";
                         });

// --- 1. Destructors that re-enter the loop ---------------------------------------

// The idle-timer pattern: cancelling a timeout destroys its callable, whose captured
// connection cancels the same timeout again in its destructor.
TEST_P(ReentrancyTest, CancelledTimeoutWhoseDestructorCancelsItAgain) {
  TimeoutHandle idle;
  int destroyed = 0;
  idle = loop().AddTimeout(absl::Seconds(5), Holding(GetParam(), OnDestroy([&] {
                                                       ++destroyed;
                                                       loop().RemoveTimeout(idle);
                                                     })));
  bool unrelated_fired = false;
  loop().AddTimeout(absl::Seconds(1), [&] { unrelated_fired = true; });
  loop().AddTimeout(absl::Seconds(2), [&] { loop().Stop(); });
  loop().RemoveTimeout(idle);
  EXPECT_EQ(destroyed, 1);
  loop().Start();
  EXPECT_TRUE(unrelated_fired) << "an unrelated timeout vanished";
  EXPECT_EQ(destroyed, 1);
}

TEST_P(ReentrancyTest, FiredTimeoutWhoseDestructorCancelsOthersAndAddsMore) {
  TimeoutHandle own, victim;
  std::vector<std::string> ran;
  own = loop().AddTimeout(absl::Seconds(1),
                          Holding(GetParam(), OnDestroy([&] {
                                    loop().RemoveTimeout(own);  // Fired already: a no-op.
                                    loop().RemoveTimeout(victim);
                                    loop().AddTimeout(absl::Seconds(1),
                                                      [&] { ran.push_back("added"); });
                                    loop().AddCallback([&] { ran.push_back("callback"); });
                                  }),
                                  [&] { ran.push_back("own"); }));
  victim = loop().AddTimeout(absl::Seconds(3), [&] { ran.push_back("victim"); });
  loop().AddTimeout(absl::Seconds(2), [&] { ran.push_back("bystander"); });
  loop().AddTimeout(absl::Seconds(10), [&] { loop().Stop(); });
  loop().Start();
  // "added" is due at 2 s too, but was added after the bystander.
  EXPECT_THAT(ran, ElementsAre("own", "callback", "bystander", "added"));
}

// A destructor that adds a timeout while the loop's timer storage is exactly full
// (63 or 127 other timeouts pending) makes that storage grow under the cancel.
TEST_P(ReentrancyTest, DestructorAddsATimeoutWhileTimerStorageIsFull) {
  for (int others : {63, 127, 255}) {
    SCOPED_TRACE(others);
    int fired = 0;
    std::vector<TimeoutHandle> handles;
    for (int i = 0; i < others; ++i) {
      handles.push_back(loop().AddTimeout(absl::Seconds(1 + i % 7), [&] { ++fired; }));
    }
    bool added_fired = false;
    const TimeoutHandle target = loop().AddTimeout(
        absl::Seconds(3), Holding(GetParam(), OnDestroy([&] {
                                    loop().AddTimeout(absl::Seconds(2),
                                                      [&] { added_fired = true; });
                                  }),
                                  [&] { ADD_FAILURE() << "cancelled timeout ran"; }));
    loop().RemoveTimeout(target);
    loop().AddTimeout(absl::Seconds(30), [&] { loop().Stop(); });
    loop().Start();
    EXPECT_EQ(fired, others);
    EXPECT_TRUE(added_fired);
  }
}

// A batch of due timeouts: one's destructor (run after it fired) cancels a later one
// of the same batch, which then never runs.
TEST_P(ReentrancyTest, DestructorCancelsALaterTimeoutOfTheSameBatch) {
  TimeoutHandle later;
  std::vector<std::string> ran;
  loop().AddTimeout(absl::Seconds(1),
                    Holding(GetParam(), OnDestroy([&] { loop().RemoveTimeout(later); }),
                            [&] { ran.push_back("first"); }));
  later = loop().AddTimeout(absl::Seconds(1), [&] { ran.push_back("later"); });
  loop().AddTimeout(absl::Seconds(1), [&] { ran.push_back("third"); });
  loop().AddTimeout(absl::Seconds(2), [&] { loop().Stop(); });
  loop().Start();
  EXPECT_THAT(ran, ElementsAre("first", "third"));
}

TEST_P(ReentrancyTest, DestroyingTheLoopWithTimeoutsWhoseDestructorsReenterIt) {
  IOLoop& l = loop();  // fake_.loop() is gone while the loop is destroyed.
  int destroyed = 0;
  TimeoutHandle a, b;
  a = l.AddTimeout(absl::Seconds(1),
                   Holding(GetParam(), OnDestroy([&] {
                             ++destroyed;
                             l.RemoveTimeout(b);
                             l.RemoveTimeout(a);
                             l.AddTimeout(absl::Seconds(1),
                                          Holding(GetParam(), OnDestroy([&] { ++destroyed; })));
                             l.AddCallback(Holding(GetParam(), OnDestroy([&] { ++destroyed; })));
                           })));
  b = l.AddTimeout(absl::Seconds(2), Holding(GetParam(), OnDestroy([&] {
                                               ++destroyed;
                                               l.RemoveTimeout(a);
                                             })));
  fake_.DestroyLoopTestOnly();
  EXPECT_EQ(destroyed, 4) << "a, b, and what a's destructor added";
}

TEST_P(ReentrancyTest, DestroyingTheLoopWithQueuedCallbacksThatAddCallbacks) {
  IOLoop& l = loop();  // fake_.loop() is gone while the loop is destroyed.
  int destroyed = 0;
  bool ran = false;
  l.AddCallback(Holding(GetParam(), OnDestroy([&] {
                          ++destroyed;
                          l.AddCallback(Holding(GetParam(), OnDestroy([&] { ++destroyed; }),
                                                [&] { ran = true; }));
                        }),
                        [&] { ran = true; }));
  fake_.DestroyLoopTestOnly();
  EXPECT_EQ(destroyed, 2);
  EXPECT_FALSE(ran) << "a closed loop never runs callbacks";
}

TEST_P(ReentrancyTest, CloseTearsEverythingDownWhileTheLoopIsWhole) {
  int destroyed = 0;
  bool ran = false;
  int fd_a[2], fd_b[2];
  ASSERT_EQ(pipe(fd_a), 0);
  ASSERT_EQ(pipe(fd_b), 0);
  // A handler whose destructor removes another handler and adds work of every kind.
  ASSERT_TRUE(loop()
                  .AddHandler(
                      fd_a[0],
                      [token = OnDestroy([&] {
                         ++destroyed;
                         (void)loop().RemoveHandler(fd_b[0]);
                         loop().AddTimeout(absl::Seconds(1),
                                           Holding(GetParam(), OnDestroy([&] { ++destroyed; }),
                                                   [&] { ran = true; }));
                         loop().AddCallback(Holding(GetParam(), OnDestroy([&] { ++destroyed; }),
                                                    [&] { ran = true; }));
                       })](int, EventMask) {},
                      kRead)
                  .ok());
  ASSERT_TRUE(loop()
                  .AddHandler(
                      fd_b[0], [token = OnDestroy([&] { ++destroyed; })](int, EventMask) {}, kRead)
                  .ok());
  loop().AddTimeout(absl::Seconds(1), Holding(GetParam(), OnDestroy([&] {
                                                ++destroyed;
                                                loop().AddCallback(Holding(
                                                    GetParam(), OnDestroy([&] { ++destroyed; })));
                                              }),
                                              [&] { ran = true; }));
  ASSERT_TRUE(loop().Close().ok());
  EXPECT_EQ(destroyed, 6);
  EXPECT_FALSE(ran);
  // Close() without all_fds leaves the fds open (the poller is gone with the loop).
  for (int fd : {fd_a[0], fd_a[1], fd_b[0], fd_b[1]}) EXPECT_EQ(close(fd), 0);
}

TEST_P(ReentrancyTest, HandlerDestructorReentersOnRemove) {
  int fd_a[2], fd_b[2], fd_c[2];
  ASSERT_EQ(pipe(fd_a), 0);
  ASSERT_EQ(pipe(fd_b), 0);
  ASSERT_EQ(pipe(fd_c), 0);
  int b_destroyed = 0;
  ASSERT_TRUE(loop()
                  .AddHandler(
                      fd_a[0], [token = OnDestroy([&] {
                                  EXPECT_TRUE(loop().RemoveHandler(fd_b[0]).ok());
                                  EXPECT_TRUE(loop()
                                                  .AddHandler(
                                                      fd_c[0], [](int, EventMask) {}, kRead)
                                                  .ok());
                                  EXPECT_FALSE(loop().RemoveHandler(fd_a[0]).ok())
                                      << "already removed";
                                })](int, EventMask) {},
                      kRead)
                  .ok());
  ASSERT_TRUE(
      loop()
          .AddHandler(
              fd_b[0], [token = OnDestroy([&] { ++b_destroyed; })](int, EventMask) {}, kRead)
          .ok());
  EXPECT_TRUE(loop().RemoveHandler(fd_a[0]).ok());
  EXPECT_EQ(b_destroyed, 1);
  EXPECT_TRUE(fake_.poller().IsRegistered(fd_c[0]));
  EXPECT_FALSE(fake_.poller().IsRegistered(fd_a[0]));
  EXPECT_FALSE(fake_.poller().IsRegistered(fd_b[0]));
  for (int* p : {fd_a, fd_b, fd_c}) {
    close(p[0]);
    close(p[1]);
  }
}

// Callbacks are destroyed one by one, right after each runs, so a destructor sees the
// loop as the next callback will.
TEST_P(ReentrancyTest, EachCallbackIsDestroyedRightAfterItRuns) {
  std::vector<std::string> events;
  loop().AddCallback(Holding(GetParam(), OnDestroy([&] {
                               events.push_back("first destroyed");
                               loop().AddCallback([&] {
                                 events.push_back("added by destructor");
                                 loop().Stop();
                               });
                             }),
                             [&] { events.push_back("first ran"); }));
  loop().AddCallback([&] { events.push_back("second ran"); });
  loop().Start();
  EXPECT_THAT(events,
              ElementsAre("first ran", "first destroyed", "second ran", "added by destructor"));
}

TEST_F(HardeningTest, PeriodicCallbackMayDestroyItselfFromItsCallback) {
  int runs = 0;
  PeriodicCallback* periodic = nullptr;
  periodic = new PeriodicCallback(
      [&] {
        ++runs;
        delete periodic;
        periodic = nullptr;
      },
      absl::Seconds(1), &loop());
  periodic->Start();
  loop().AddTimeout(absl::Seconds(10), [&] { loop().Stop(); });
  loop().Start();
  EXPECT_EQ(runs, 1);
  EXPECT_EQ(periodic, nullptr);
}

// --- 2. Arithmetic at the edges ----------------------------------------------------

TEST_F(HardeningTest, TimeoutAtInfinitePastAddedByATimeoutRunsAfterOneZeroPoll) {
  absl::Time first_ran, second_ran;
  int polls_between = -1;
  loop().AddTimeout(absl::Seconds(1), [&] {
    first_ran = fake_.clock().Now();
    const int polls = fake_.poller().poll_count();
    loop().AddTimeout(absl::InfinitePast(), [&, polls] {
      second_ran = fake_.clock().Now();
      polls_between = fake_.poller().poll_count() - polls;
      loop().Stop();
    });
  });
  loop().Start();
  EXPECT_EQ(polls_between, 1);
  EXPECT_EQ(fake_.poller().last_timeout(), absl::ZeroDuration());
  EXPECT_EQ(second_ran, first_ran) << "the fake clock must not jump";
}

TEST_F(HardeningTest, InfiniteAndHugeDeadlinesAndDelays) {
  std::vector<std::string> ran;
  loop().AddTimeout(absl::InfiniteFuture(), [&] { ran.push_back("never (time)"); });
  loop().AddTimeout(absl::InfiniteDuration(), [&] { ran.push_back("never (delay)"); });
  loop().AddTimeout(absl::Hours(24 * 365 * 200'000'000.0), [&] { ran.push_back("never (huge)"); });
  loop().AddTimeout(absl::FromUnixSeconds(INT64_MAX / 2), [&] { ran.push_back("never (far)"); });
  loop().AddTimeout(-absl::InfiniteDuration(), [&] { ran.push_back("now (-inf delay)"); });
  loop().AddTimeout(-absl::Hours(24 * 365 * 200'000'000.0), [&] { ran.push_back("now (-huge)"); });
  loop().AddTimeout(absl::InfinitePast(), [&] { ran.push_back("now (-inf time)"); });
  loop().AddTimeout(absl::Seconds(1), [&] { loop().Stop(); });
  loop().Start();
  // All three saturate to the same deadline, so they run in the order added.
  EXPECT_THAT(ran, ElementsAre("now (-inf delay)", "now (-huge)", "now (-inf time)"));
  EXPECT_EQ(fake_.clock().Now() - fake_.start(), absl::Seconds(1));
}

// The loop's own fd table must cope with any fd a poller accepts (here a FakePoller
// that takes any number, as a custom backend might) without overflowing or
// allocating gigabytes.
TEST(HugeFdTest, HugeFdNumbersAreHandledOrRefusedWithAStatus) {
  testing::FakeClock clock;
  IOLoop::Options options;
  options.poller =
      std::make_unique<testing::FakePoller>(&clock, testing::FakePoller::FdCheck::kAnyNumber);
  options.clock = &clock;
  IOLoop loop(std::move(options));
  for (int fd : {INT_MAX, INT_MAX - 1, 1 << 30, (1 << 20) - 1, 1 << 20, -1, INT_MIN}) {
    SCOPED_TRACE(fd);
    absl::Status added = loop.AddHandler(
        fd, [](int, EventMask) {}, kRead);
    if (fd < 0) {
      EXPECT_EQ(added.code(), absl::StatusCode::kInvalidArgument);
      EXPECT_THAT(added.message(), HasSubstr(std::to_string(fd)));
      continue;
    }
    ASSERT_TRUE(added.ok()) << added;
    EXPECT_TRUE(loop.UpdateHandler(fd, kWrite).ok());
    EXPECT_TRUE(loop.RemoveHandler(fd).ok());
    EXPECT_EQ(loop.UpdateHandler(fd, kRead).code(), absl::StatusCode::kNotFound);
    EXPECT_EQ(loop.RemoveHandler(fd).code(), absl::StatusCode::kNotFound);
  }
}

// --- 3. Handles across loops --------------------------------------------------------

TEST_F(HardeningTest, AHandleFromAnotherLoopCancelsNothing) {
  testing::FakeLoop other;
  const TimeoutHandle from_other = other.loop().AddTimeout(absl::Seconds(1), [] {});
  bool fired = false;
  loop().AddTimeout(absl::Seconds(1), [&] {
    fired = true;
    loop().Stop();
  });
  loop().RemoveTimeout(from_other);
  loop().Start();
  EXPECT_TRUE(fired);
}

// --- 4. Construction failures are statuses -----------------------------------------

TEST(CreateTest, CreateReportsAWakerTheSelectBackendCannotHold) {
  // Take every fd below FD_SETSIZE, so the waker gets one select cannot watch.
  std::vector<int> taken;
  while (true) {
    const int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0) << "the fd limit is below FD_SETSIZE";
    taken.push_back(fd);
    if (fd >= FD_SETSIZE - 1) break;
  }
  auto poller = NewPoller("select");
  ASSERT_TRUE(poller.ok()) << poller.status();
  IOLoop::Options options;
  options.poller = *std::move(poller);
  absl::StatusOr<std::unique_ptr<IOLoop>> loop = IOLoop::Create(std::move(options));
  for (int fd : taken) close(fd);
  ASSERT_FALSE(loop.ok());
  EXPECT_EQ(loop.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(loop.status().message(), HasSubstr("FD_SETSIZE"));
}

TEST(CreateTest, CreateWithDefaultsWorks) {
  absl::StatusOr<std::unique_ptr<IOLoop>> loop = IOLoop::Create({});
  ASSERT_TRUE(loop.ok()) << loop.status();
  bool ran = false;
  (*loop)->AddCallback([&] {
    ran = true;
    (*loop)->Stop();
  });
  (*loop)->Start();
  EXPECT_TRUE(ran);
}

// --- 5. Nothing a user supplies escapes Start() -------------------------------------

class ThrowingHooksLoop : public IOLoop {
 public:
  using IOLoop::IOLoop;

 protected:
  void HandleCallbackException(std::exception_ptr) override {
    throw std::runtime_error("HandleCallbackException threw");
  }
};

TEST(ExceptionsTest, ThrowingLogHandlerAndThrowingHandlerDoNotEscapeStart) {
  testing::FakeClock clock;
  IOLoop::Options options;
  options.poller = std::make_unique<testing::FakePoller>(&clock);
  options.clock = &clock;
  options.log_handler = [](absl::string_view) { throw std::runtime_error("log handler threw"); };
  ThrowingHooksLoop loop(std::move(options));
  for (int round = 0; round < 2; ++round) {
    loop.AddCallback([] { throw std::runtime_error("callback threw"); });
    loop.AddTimeout(absl::Seconds(1), [] { throw 42; });
    loop.AddTimeout(absl::Seconds(2), [&] { loop.Stop(); });
    EXPECT_NO_THROW(loop.Start());
    EXPECT_FALSE(loop.Running());
  }
}

// --- 6. The Stop contract -----------------------------------------------------------

TEST_F(HardeningTest, StopFromAHandlerRunsWhatItQueuedBeforeStartReturns) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  std::vector<std::string> ran;
  ASSERT_TRUE(loop()
                  .AddHandler(
                      fds[0],
                      [&](int, EventMask) {
                        ran.push_back("handler");
                        loop().Stop();
                        loop().AddCallback([&] { ran.push_back("callback"); });
                        loop().AddTimeout(absl::InfinitePast(), [&] { ran.push_back("timeout"); });
                        loop().AddTimeout(absl::Seconds(1),
                                          [&] { ran.push_back("future timeout"); });
                      },
                      kRead)
                  .ok());
  fake_.poller().Inject(fds[0], kRead);
  loop().Start();
  const int polls = fake_.poller().poll_count();
  EXPECT_THAT(ran, ElementsAre("handler", "callback", "timeout"));
  EXPECT_EQ(polls, 1) << "no poll after Stop()";
  close(fds[0]);
  close(fds[1]);
}

// --- 7. The clock is on the Unix epoch ---------------------------------------------

TEST(ClockEpochTest, RealClockReadsLikeTheWallClock) {
  const absl::Duration apart = RealClock().Now() - absl::Now();
  EXPECT_LT(absl::AbsDuration(apart), absl::Seconds(1)) << apart;
}

TEST(ClockEpochTest, WallClockDeadlineFiresAfterItsDelay) {
  IOLoop loop;
  const absl::Time start = absl::Now();
  absl::Time fired_at;
  loop.AddTimeout(absl::Now() + absl::Milliseconds(30), [&] {
    fired_at = absl::Now();
    loop.Stop();
  });
  loop.AddTimeout(absl::Seconds(60), [&] { loop.Stop(); });  // A bound, not expected.
  loop.Start();
  ASSERT_NE(fired_at, absl::Time());
  EXPECT_GE(fired_at - start, absl::Milliseconds(29));
  EXPECT_LT(fired_at - start, absl::Seconds(30));
}

// --- 8. Thread affinity -------------------------------------------------------------

TEST_F(HardeningTest, IsInLoopThread) {
  EXPECT_TRUE(loop().IsInLoopThread()) << "the constructing thread, before the loop runs";
  bool on_other = true;
  std::thread([&] { on_other = loop().IsInLoopThread(); }).join();
  EXPECT_FALSE(on_other);
  bool inside = false;
  loop().AddCallback([&] {
    inside = loop().IsInLoopThread();
    loop().Stop();
  });
  loop().Start();
  EXPECT_TRUE(inside);
}

#ifndef NDEBUG
TEST(ThreadAffinityDeathTest, LoopThreadOnlyCallFromAnotherThreadWhileRunning) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        IOLoop loop;
        loop.AddCallback(
            [&] { std::thread([&] { loop.AddTimeout(absl::Seconds(1), [] {}); }).join(); });
        loop.Start();
      },
      "loop thread");
}
#endif

// --- 9. Wake-ups --------------------------------------------------------------------

// A Waker that counts Wake() calls and whose "fd" only the FakePoller reports.
class CountingWaker : public Waker {
 public:
  static constexpr int kFd = 900;
  int fd() const override { return kFd; }
  absl::Status Wake() override {
    wakes.fetch_add(1);
    return absl::OkStatus();
  }
  void Consume() override {}
  absl::string_view Name() const override { return "counting"; }
  std::atomic<int> wakes{0};
};

TEST(WakeupTest, PostsWhileTheLoopIsAwakeSendNoWakeup) {
  testing::FakeClock clock;
  // The CountingWaker's fd is a made-up number: the fake must take any number.
  auto poller_owned =
      std::make_unique<testing::FakePoller>(&clock, testing::FakePoller::FdCheck::kAnyNumber);
  testing::FakePoller* poller = poller_owned.get();
  auto waker_owned = std::make_unique<CountingWaker>();
  CountingWaker* waker = waker_owned.get();
  IOLoop::Options options;
  options.poller = std::move(poller_owned);
  options.clock = &clock;
  options.waker = std::move(waker_owned);
  IOLoop loop(std::move(options));
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);

  std::vector<std::string> ran;
  // Posted before Start(): the loop looks at its queue before it first sleeps.
  loop.AddCallback([&] { ran.push_back("before start"); });
  EXPECT_EQ(waker->wakes.load(), 0);
  // Once the loop sleeps (here: in its second poll, with nothing to do), another
  // thread posts: that needs the one wake-up. In the same batch as the waker's event,
  // a handler lets another thread post again before the loop drains its queue: the
  // drain is already due, so no second wake-up.
  ASSERT_TRUE(loop.AddHandler(
                      fds[0],
                      [&](int, EventMask) {
                        std::thread([&] {
                          loop.AddCallback([&] {
                            ran.push_back("while awake");
                            loop.Stop();
                          });
                        }).join();
                      },
                      kRead)
                  .ok());
  poller->SetPollHook([&](absl::Duration timeout) {
    if (timeout != absl::InfiniteDuration()) return;  // Not asleep.
    std::thread([&] { loop.AddCallback([&] { ran.push_back("while asleep"); }); }).join();
    poller->Inject(CountingWaker::kFd, kRead);
    poller->Inject(fds[0], kRead);
  });
  loop.Start();
  EXPECT_THAT(ran, ElementsAre("before start", "while asleep", "while awake"));
  EXPECT_EQ(waker->wakes.load(), 1);
  EXPECT_EQ(loop.Metrics().wakeups_sent, 1u);
  close(fds[0]);
  close(fds[1]);
}

TEST(WakeupTest, NoPostIsLostAndNoneWakesTwice) {
  IOLoop loop;
  constexpr int kRounds = 200;
  std::mutex mu;
  std::condition_variable cv;
  int ran = 0;
  std::thread producer([&] {
    for (int i = 0; i < kRounds; ++i) {
      loop.AddCallback([&] {
        std::lock_guard<std::mutex> lock(mu);
        ++ran;
        cv.notify_one();
      });
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return ran == i + 1; });
    }
    loop.Stop();
  });
  loop.Start();
  producer.join();
  EXPECT_EQ(ran, kRounds);
  // A post wakes the loop only if it found it asleep, and each round has one post
  // (plus the final Stop()).
  EXPECT_LE(loop.Metrics().wakeups_sent, static_cast<uint64_t>(kRounds) + 1);
}

TEST(WakeupTest, ABurstWhileTheLoopIsBusySendsNoWakeup) {
  IOLoop loop;
  std::atomic<int> ran{0};
  constexpr int kBurst = 1000;
  loop.AddCallback([&] {
    // The loop is busy here: it will look at its queue before it sleeps again.
    std::thread([&] {
      for (int i = 0; i < kBurst; ++i) loop.AddCallback([&] { ran.fetch_add(1); });
      loop.AddCallback([&] { loop.Stop(); });
    }).join();
  });
  loop.Start();
  EXPECT_EQ(ran.load(), kBurst);
  EXPECT_EQ(loop.Metrics().wakeups_sent, 0u);
}

}  // namespace
}  // namespace ioloop
