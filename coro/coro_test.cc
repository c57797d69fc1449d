// Deterministic tests of //coro on testing::FakeLoop (fake poller, fake clock).

#include "coro/coro.h"

#include <fcntl.h>

#include <atomic>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "ioloop/stack_context.h"
#include "testing/fake_loop.h"

namespace ioloop::coro {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Sets *flag when destroyed: shows that a frame holding it was destroyed.
struct Guard {
  bool* flag;
  explicit Guard(bool* f) : flag(f) {}
  Guard(const Guard&) = delete;
  ~Guard() { *flag = true; }
};

class CoroTest : public ::testing::Test {
 protected:
  IOLoop& loop() { return fake_.loop(); }
  absl::Duration Elapsed() { return fake_.clock().Now() - fake_.start(); }
  testing::FakeLoop fake_;
};

Task<int> Immediate(int v) { co_return v; }

Task<int> SleepThen(absl::Duration d, int v) {
  co_await Sleep(d);
  co_return v;
}

TEST_F(CoroTest, RunSyncReturnsTheValueAfterTheSleep) {
  EXPECT_EQ(RunSync(loop(), SleepThen(absl::Seconds(3), 7)), 7);
  EXPECT_EQ(Elapsed(), absl::Seconds(3));
}

TEST_F(CoroTest, RunSyncVoid) {
  bool ran = false;
  auto body = [](bool* ran) -> Task<> {
    co_await Sleep(absl::Milliseconds(5));
    *ran = true;
  };
  RunSync(loop(), body(&ran));
  EXPECT_TRUE(ran);
}

TEST_F(CoroTest, TaskIsLazy) {
  bool ran = false;
  auto body = [](bool* ran) -> Task<> {
    *ran = true;
    co_return;
  };
  auto outer = [](bool* ran, Task<> (*make)(bool*)) -> Task<bool> {
    Task<> inner = make(ran);  // Created inside a running task: still lazy.
    co_await Yield();
    bool before = *ran;
    co_await std::move(inner);
    co_return before;
  };
  Task<> t = body(&ran);
  EXPECT_FALSE(ran);
  EXPECT_FALSE(RunSync(loop(), outer(&ran, +body)));
  EXPECT_TRUE(ran);
}

Task<> Thrower(int depth) {
  if (depth == 0) {
    co_await Sleep(absl::Milliseconds(1));
    throw std::runtime_error("deep");
  }
  co_await Thrower(depth - 1);
}

TEST_F(CoroTest, ExceptionsCrossThreeLevelsAndRunSyncRethrows) {
  EXPECT_THROW(
      {
        try {
          RunSync(loop(), Thrower(3));
        } catch (const std::runtime_error& e) {
          EXPECT_STREQ(e.what(), "deep");
          throw;
        }
      },
      std::runtime_error);
}

TEST_F(CoroTest, ExceptionCaughtByAnAwaiter) {
  auto body = []() -> Task<std::string> {
    try {
      co_await Thrower(2);
    } catch (const std::runtime_error& e) {
      co_return std::string("caught ") + e.what();
    }
    co_return "not thrown";
  };
  EXPECT_EQ(RunSync(loop(), body()), "caught deep");
}

TEST_F(CoroTest, HundredThousandSynchronousAwaitsDoNotGrowTheStack) {
  auto body = []() -> Task<long> {
    long sum = 0;
    for (int i = 0; i < 100000; ++i) sum += co_await Immediate(1);
    co_return sum;
  };
  EXPECT_EQ(RunSync(loop(), body()), 100000);
}

TEST_F(CoroTest, RunSyncTimeoutDestroysTheTask) {
  bool destroyed = false;
  auto body = [](bool* destroyed) -> Task<> {
    Guard g(destroyed);
    co_await Sleep(absl::Seconds(10));
    ADD_FAILURE() << "resumed after RunSync's timeout";
  };
  EXPECT_THROW(RunSync(loop(), body(&destroyed), absl::Seconds(1)), TimeoutError);
  EXPECT_TRUE(destroyed);
  EXPECT_EQ(Elapsed(), absl::Seconds(1));
  // The sleep's timeout went with the frame: nothing resumes later.
  loop().AddTimeout(absl::Seconds(20), [this] { loop().Stop(); });
  loop().Start();
}

TEST_F(CoroTest, RunSyncOnAStoppedLoopThrowsLoopStopped) {
  auto token = std::make_shared<int>(0);
  auto body = [](std::shared_ptr<int> token) -> Task<> { co_await Sleep(absl::Seconds(1)); };
  loop().Stop();  // Tornado: the next Start() returns at once.
  EXPECT_THROW(RunSync(loop(), body(token)), LoopStoppedError);
  // Never started: its starter callback still owns the frame; the loop destroys it.
  EXPECT_EQ(token.use_count(), 2);
  fake_.DestroyLoopTestOnly();
  EXPECT_EQ(token.use_count(), 1);
}

TEST_F(CoroTest, RunSyncStoppedFromOutsideDestroysTheTask) {
  bool destroyed = false;
  auto body = [](bool* destroyed) -> Task<> {
    Guard g(destroyed);
    co_await Sleep(absl::Seconds(10));
  };
  loop().AddTimeout(absl::Seconds(1), [this] { loop().Stop(); });
  EXPECT_THROW(RunSync(loop(), body(&destroyed)), LoopStoppedError);
  EXPECT_TRUE(destroyed);
}

TEST_F(CoroTest, TurnTakingAwaitsLetEarlierCallbacksRunFirst) {
  std::vector<std::string> order;
  auto body = [](IOLoop* loop, std::vector<std::string>* order) -> Task<> {
    loop->AddCallback([order] { order->push_back("cb1"); });
    co_await Yield();
    order->push_back("yield");
    loop->AddCallback([order] { order->push_back("cb2"); });
    co_await Sleep(absl::ZeroDuration());
    order->push_back("sleep0");
    loop->AddCallback([order] { order->push_back("cb3"); });
    co_await Sleep(absl::Seconds(-5));
    order->push_back("sleep-neg");
    loop->AddCallback([order] { order->push_back("cb4"); });
    co_await SleepUntil(loop->Time() - absl::Hours(1));
    order->push_back("until-past");
  };
  RunSync(loop(), body(&loop(), &order));
  EXPECT_THAT(
      order, ElementsAre("cb1", "yield", "cb2", "sleep0", "cb3", "sleep-neg", "cb4", "until-past"));
  EXPECT_EQ(Elapsed(), absl::ZeroDuration());
}

TEST_F(CoroTest, SleepersResumeInDeadlineOrder) {
  std::vector<int> order;
  auto sleeper = [](std::vector<int>* order, int ms) -> Task<> {
    co_await Sleep(absl::Milliseconds(ms));
    order->push_back(ms);
  };
  for (int ms : {30, 10, 20, 10}) Spawn(loop(), sleeper(&order, ms));
  RunSync(loop(), SleepThen(absl::Milliseconds(40), 0));
  EXPECT_THAT(order, ElementsAre(10, 10, 20, 30));
}

TEST_F(CoroTest, SleepUntilUsesTheLoopClock) {
  auto body = [](IOLoop* loop) -> Task<absl::Time> {
    co_await SleepUntil(loop->Time() + absl::Minutes(2));
    co_return loop->Time();
  };
  EXPECT_EQ(RunSync(loop(), body(&loop())), fake_.start() + absl::Minutes(2));
}

TEST_F(CoroTest, WithTimeoutCancelsASleep) {
  bool destroyed = false;
  auto inner = [](bool* destroyed) -> Task<int> {
    Guard g(destroyed);
    co_await Sleep(absl::Seconds(10));
    ADD_FAILURE() << "inner resumed after its timeout";
    co_return 1;
  };
  auto outer = [](bool* destroyed, Task<int> (*inner)(bool*), IOLoop* loop) -> Task<std::string> {
    std::string what = "no timeout";
    try {
      co_await WithTimeout(absl::Seconds(1), inner(destroyed));
    } catch (const TimeoutError& e) {
      EXPECT_TRUE(*destroyed) << "inner frame destroyed before the awaiter resumes";
      what = e.what();
    }
    co_await Sleep(absl::Seconds(30));  // Past the inner sleep's deadline.
    co_return what;
  };
  EXPECT_THAT(RunSync(loop(), outer(&destroyed, +inner, &loop())), HasSubstr("within 1s"));
  EXPECT_TRUE(destroyed);
  EXPECT_EQ(Elapsed(), absl::Seconds(31));
}

TEST_F(CoroTest, WithTimeoutReturnsTheValueWhenInTime) {
  auto body = []() -> Task<int> {
    int a = co_await WithTimeout(absl::Seconds(2), SleepThen(absl::Seconds(1), 5));
    int b = co_await WithTimeout(absl::Seconds(2), Immediate(6));  // Finishes inline.
    co_await Sleep(absl::Seconds(5));  // The expiry timers were removed: no stray resume.
    co_return a + b;
  };
  EXPECT_EQ(RunSync(loop(), body()), 11);
  EXPECT_EQ(Elapsed(), absl::Seconds(6));
}

TEST_F(CoroTest, WithTimeoutPassesExceptionsThrough) {
  auto body = []() -> Task<> { co_await WithTimeout(absl::Seconds(1), Thrower(1)); };
  EXPECT_THROW(RunSync(loop(), body()), std::runtime_error);
}

TEST_F(CoroTest, SpawnedExceptionGoesToHandleCallbackException) {
  Spawn(loop(), Thrower(2));
  RunSync(loop(), SleepThen(absl::Seconds(1), 0));
  EXPECT_THAT(fake_.errors(), ElementsAre("deep"));
}

TEST_F(CoroTest, SpawnedTaskKeepsItsStackContextAcrossSuspensions) {
  std::vector<std::string> handled;
  std::vector<bool> active;
  auto body = [](std::vector<bool>* active) -> Task<> {
    active->push_back(StackContext::Active());
    co_await Sleep(absl::Milliseconds(1));
    active->push_back(StackContext::Active());
    co_await Yield();
    active->push_back(StackContext::Active());
    throw std::runtime_error("late");
  };
  {
    ExceptionStackContext ctx([&handled](std::exception_ptr e) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        handled.push_back(ex.what());
      }
      return true;
    });
    Spawn(loop(), body(&active));
  }
  RunSync(loop(), SleepThen(absl::Seconds(1), 0));  // RunSync itself: no context.
  EXPECT_THAT(active, ElementsAre(true, true, true));
  EXPECT_THAT(handled, ElementsAre("late"));
  EXPECT_TRUE(fake_.errors().empty());
}

TEST_F(CoroTest, TaskWithoutContextRunsWithoutOneWhateverCompletesIt) {
  std::vector<bool> active;
  auto body = [](std::vector<bool>* active) -> Task<> {
    co_await Sleep(absl::Milliseconds(1));
    active->push_back(StackContext::Active());
  };
  Spawn(loop(), body(&active));
  {
    ExceptionStackContext ctx([](std::exception_ptr) { return true; });
    loop().AddTimeout(absl::Milliseconds(1), [] {});
  }
  RunSync(loop(), SleepThen(absl::Seconds(1), 0));
  EXPECT_THAT(active, ElementsAre(false));
}

TEST_F(CoroTest, CloseDestroysTenThousandSuspendedTasks) {
  const int64_t live_before = ThreadFrameStats().live;
  int destroyed = 0;
  struct Counter {
    int* n;
    ~Counter() { ++*n; }
  };
  auto forever = [](int* destroyed, int i) -> Task<> {
    Counter c{destroyed};
    if (i % 2 == 0) {
      co_await Sleep(absl::Hours(1000));
    } else {
      co_await Thrower(2);  // Nested frames, suspended in the innermost.
    }
    ADD_FAILURE() << "resumed after Close";
  };
  for (int i = 0; i < 10000; ++i) Spawn(loop(), forever(&destroyed, i));
  EXPECT_GT(ThreadFrameStats().live, live_before + 10000);
  loop().RunOnce(absl::ZeroDuration());  // Start them all; they suspend.
  EXPECT_EQ(destroyed, 0);
  ASSERT_TRUE(loop().Close().ok());
  EXPECT_EQ(destroyed, 10000);
  EXPECT_EQ(ThreadFrameStats().live, live_before);
}

TEST_F(CoroTest, UnstartedSpawnsAreDestroyedByClose) {
  auto token = std::make_shared<int>(0);
  auto body = [](std::shared_ptr<int> token) -> Task<> { co_return; };
  Spawn(loop(), body(token));
  EXPECT_EQ(token.use_count(), 2);  // Lazy: the frame holds its parameter, nothing ran.
  ASSERT_TRUE(loop().Close().ok());
  EXPECT_EQ(token.use_count(), 1);
}

TEST_F(CoroTest, FrameDestructorsMayCallBackIntoTheLoopDuringClose) {
  int destroyed = 0;
  struct Reentrant {
    IOLoop* loop;
    int* destroyed;
    ~Reentrant() {
      ++*destroyed;
      loop->AddCallback([] { ADD_FAILURE() << "ran after Close"; });
      TimeoutHandle h = loop->AddTimeout(absl::Seconds(1), [] {});
      loop->RemoveTimeout(h);
      loop->AddTimeout(absl::Seconds(1), [] { ADD_FAILURE() << "ran after Close"; });
      Spawn(*loop, []() -> Task<> {
        ADD_FAILURE() << "spawned during Close ran";
        co_return;
      }());
    }
  };
  auto body = [](IOLoop* loop, int* destroyed, int fd) -> Task<> {
    Reentrant r{loop, destroyed};
    if (fd >= 0) {
      (void)co_await WaitReadable(fd);
    } else {
      co_await Sleep(absl::Seconds(100));
    }
  };
  Spawn(loop(), body(&loop(), &destroyed, -1));
  Spawn(loop(), body(&loop(), &destroyed, fake_.Fd(1)));
  loop().RunOnce(absl::ZeroDuration());
  ASSERT_TRUE(loop().Close().ok());
  EXPECT_EQ(destroyed, 2);
  EXPECT_GE(fcntl(fake_.Fd(1), F_GETFD), 0) << "the awaited fd was closed";
}

TEST_F(CoroTest, DestroyingTheLoopDestroysSuspendedTasks) {
  bool destroyed = false;
  auto body = [](bool* destroyed) -> Task<> {
    Guard g(destroyed);
    co_await Sleep(absl::Hours(1));
  };
  Spawn(loop(), body(&destroyed));
  loop().RunOnce(absl::ZeroDuration());
  fake_.DestroyLoopTestOnly();
  EXPECT_TRUE(destroyed);
}

TEST_F(CoroTest, CloseFromInsideATaskIsRefusedAndTheTaskGoesOn) {
  auto body = [](IOLoop* loop) -> Task<absl::Status> {
    absl::Status closed = loop->Close();  // The loop is running: Close() refuses.
    co_await Sleep(absl::Seconds(1));
    co_return closed;
  };
  EXPECT_EQ(RunSync(loop(), body(&loop())).code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(CoroTest, WaitReadableResumesAndRemovesItsHandler) {
  const int fd = fake_.Fd(1);
  auto body = [](int fd) -> Task<absl::StatusOr<EventMask>> {
    co_return co_await WaitReadable(fd);
  };
  fake_.poller().Inject(fd, kRead);
  absl::StatusOr<EventMask> events = RunSync(loop(), body(fd));
  ASSERT_TRUE(events.ok()) << events.status();
  EXPECT_TRUE(*events & kRead);
  // No handler left behind: the fd can be watched again.
  EXPECT_TRUE(loop()
                  .AddHandler(
                      fd, [](int, EventMask) {}, kRead)
                  .ok());
  EXPECT_TRUE(loop().RemoveHandler(fd).ok());
}

TEST_F(CoroTest, WaitOnAnFdWithAHandlerFailsAtOnce) {
  const int fd = fake_.Fd(1);
  ASSERT_TRUE(loop()
                  .AddHandler(
                      fd, [](int, EventMask) {}, kRead)
                  .ok());
  auto body = [](int fd) -> Task<absl::StatusOr<EventMask>> {
    co_return co_await WaitWritable(fd);
  };
  absl::StatusOr<EventMask> events = RunSync(loop(), body(fd));
  EXPECT_EQ(events.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_TRUE(loop().RemoveHandler(fd).ok());  // Still the original handler.
}

TEST_F(CoroTest, WithTimeoutCancelsAWaitReadable) {
  const int fd = fake_.Fd(1);
  auto inner = [](int fd) -> Task<> { (void)co_await WaitReadable(fd); };
  auto outer = [](int fd, Task<> (*inner)(int)) -> Task<bool> {
    try {
      co_await WithTimeout(absl::Seconds(1), inner(fd));
    } catch (const TimeoutError&) {
      co_return true;
    }
    co_return false;
  };
  EXPECT_TRUE(RunSync(loop(), outer(fd, +inner)));
  EXPECT_TRUE(loop()
                  .AddHandler(
                      fd, [](int, EventMask) {}, kRead)
                  .ok())
      << "handler left behind";
  EXPECT_TRUE(loop().RemoveHandler(fd).ok());
  EXPECT_GE(fcntl(fd, F_GETFD), 0) << "the fd was closed";
}

TEST_F(CoroTest, SleepAllocatesNothingInSteadyState) {
  auto body = []() -> Task<> {
    for (int i = 0; i < 1000; ++i) co_await Sleep(absl::Milliseconds(1));
  };
  auto outer = [](Task<> (*body)()) -> Task<FrameStats> {
    co_await body();  // Warm up the caches.
    FrameStats before = ThreadFrameStats();
    co_await body();
    FrameStats after = ThreadFrameStats();
    after.fresh -= before.fresh;
    co_return after;
  };
  FrameStats delta = RunSync(loop(), outer(+body));
  EXPECT_EQ(delta.fresh, 0u);
}

// Spawn is thread-safe: the frame is made on one thread, runs and ends on the loop's.
TEST(CoroThreadTest, SpawnFromAnotherThread) {
  IOLoop loop;
  std::atomic<bool> ran{false};
  std::thread spawner([&loop, &ran] {
    Spawn(loop, [](IOLoop* loop, std::atomic<bool>* ran) -> Task<> {
      co_await Yield();
      ran->store(true);
      loop->Stop();
    }(&loop, &ran));
  });
  loop.Start();
  spawner.join();
  EXPECT_TRUE(ran.load());
}

}  // namespace
}  // namespace ioloop::coro
