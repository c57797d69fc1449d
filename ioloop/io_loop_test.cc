// The loop's behaviour on FakePoller + FakeClock: deterministic, zero real time.

#include "ioloop/io_loop.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/fake_loop.h"

namespace ioloop {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// The loop on FakePoller + FakeClock (testing/fake_loop.h), under the names these
// tests use.
class FakeLoopTest : public ::testing::Test {
 protected:
  // Fd() is a real open fd standing for `label` (the fake refuses closed fds).
  int Fd(int label) { return fake_.Fd(label); }

  testing::FakeLoop fake_;
  testing::RecordingLoop* const loop_ = &fake_.loop();
  testing::FakePoller* const poller_ = &fake_.poller();
  testing::FakeClock& clock_ = fake_.clock();
  const std::vector<std::string>& logs_ = fake_.logs();
  const absl::Time start_ = fake_.start();
};

TEST_F(FakeLoopTest, CallbacksRunInFifoOrder) {
  std::vector<int> ran;
  for (int i = 0; i < 5; ++i) loop_->AddCallback([&ran, i] { ran.push_back(i); });
  loop_->AddCallback([&] { loop_->Stop(); });
  loop_->Start();
  EXPECT_THAT(ran, ElementsAre(0, 1, 2, 3, 4));
}

TEST_F(FakeLoopTest, CallbackAddedByCallbackWaitsForNextIterationAfterZeroTimeoutPoll) {
  int polls_seen = -1;
  loop_->AddCallback([&] {
    loop_->AddCallback([&] {
      polls_seen = poller_->poll_count();
      loop_->Stop();
    });
  });
  loop_->Start();
  EXPECT_EQ(polls_seen, 1) << "one poll between the two callbacks: I/O is not starved";
  EXPECT_EQ(poller_->last_timeout(), absl::ZeroDuration());
  EXPECT_EQ(clock_.Now(), start_);
}

TEST_F(FakeLoopTest, TenMinuteTimeoutFiresWithoutWaiting) {
  bool fired = false;
  loop_->AddTimeout(absl::Minutes(10), [&] {
    fired = true;
    loop_->Stop();
  });
  loop_->Start();
  EXPECT_TRUE(fired);
  EXPECT_EQ(clock_.Now() - start_, absl::Minutes(10));
  EXPECT_EQ(loop_->Time(), clock_.Now());
}

TEST_F(FakeLoopTest, TimeoutsFireInDeadlineThenInsertionOrder) {
  std::vector<std::string> ran;
  auto record = [&](std::string name) { return [&ran, name] { ran.push_back(name); }; };
  loop_->AddTimeout(absl::Seconds(3), record("c"));
  loop_->AddTimeout(absl::Seconds(1), record("a1"));
  loop_->AddTimeout(absl::Seconds(2), record("b"));
  loop_->AddTimeout(absl::Seconds(1), record("a2"));
  loop_->AddTimeout(absl::Seconds(1), record("a3"));
  loop_->AddTimeout(absl::Seconds(4), [&] { loop_->Stop(); });
  loop_->Start();
  EXPECT_THAT(ran, ElementsAre("a1", "a2", "a3", "b", "c"));
}

TEST_F(FakeLoopTest, PastDeadlineTimeoutAddedByTimeoutRunsAfterOnePoll) {
  int polls_when_first_ran = -1;
  int polls_when_second_ran = -1;
  loop_->AddTimeout(absl::Seconds(1), [&] {
    polls_when_first_ran = poller_->poll_count();
    loop_->AddTimeout(start_, [&] {  // Already in the past.
      polls_when_second_ran = poller_->poll_count();
      loop_->Stop();
    });
  });
  loop_->Start();
  EXPECT_EQ(polls_when_second_ran, polls_when_first_ran + 1);
}

TEST_F(FakeLoopTest, RemovedTimeoutNeverRunsAndRemoveIsIdempotent) {
  std::vector<int> ran;
  TimeoutHandle second;
  TimeoutHandle first = loop_->AddTimeout(absl::Seconds(1), [&] {
    ran.push_back(1);
    loop_->RemoveTimeout(second);  // Due in the same batch: must be skipped.
  });
  second = loop_->AddTimeout(absl::Seconds(1), [&] { ran.push_back(2); });
  TimeoutHandle third = loop_->AddTimeout(absl::Seconds(2), [&] { ran.push_back(3); });
  loop_->RemoveTimeout(third);
  loop_->RemoveTimeout(third);
  loop_->RemoveTimeout(TimeoutHandle());
  loop_->AddTimeout(absl::Seconds(5), [&] { loop_->Stop(); });
  loop_->Start();
  loop_->RemoveTimeout(first);  // Fired: a no-op.
  EXPECT_THAT(ran, ElementsAre(1));
}

TEST_F(FakeLoopTest, PollTimeoutIsTimeToNextDeadline) {
  std::vector<absl::Duration> timeouts;
  poller_->SetPollHook([&](absl::Duration t) { timeouts.push_back(t); });
  loop_->AddTimeout(absl::Milliseconds(250), [] {});
  loop_->AddTimeout(absl::Seconds(2), [&] { loop_->Stop(); });
  loop_->Start();
  EXPECT_THAT(timeouts, ElementsAre(absl::Milliseconds(250), absl::Milliseconds(1750)));
}

TEST_F(FakeLoopTest, PollTimeoutIsInfiniteWithNothingScheduled) {
  std::vector<absl::Duration> timeouts;
  ASSERT_TRUE(loop_
                  ->AddHandler(
                      Fd(150), [&](int, EventMask) { loop_->Stop(); }, kRead)
                  .ok());
  poller_->SetPollHook([&](absl::Duration t) {
    timeouts.push_back(t);
    poller_->Inject(Fd(150), kRead);
  });
  loop_->Start();
  EXPECT_THAT(timeouts, ElementsAre(absl::InfiniteDuration()));
}

TEST_F(FakeLoopTest, FakePollerRefusesToSleepForever) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(loop_->Start(), "sleep forever");
}

// Fd(n) stands for "fd n": a real open fd, as the fake (like the real backends)
// refuses closed ones.

TEST_F(FakeLoopTest, HandlerReceivesInjectedEvents) {
  std::vector<std::pair<int, EventMask>> seen;
  ASSERT_TRUE(loop_
                  ->AddHandler(
                      Fd(107),
                      [&](int fd, EventMask e) {
                        seen.push_back({fd, e});
                      },
                      kRead)
                  .ok());
  EXPECT_EQ(poller_->RegisteredEvents(Fd(107)), kRead);
  poller_->Inject(Fd(107), kRead | kWrite);  // kWrite was not asked for: filtered.
  loop_->AddTimeout(absl::Seconds(1), [&] { loop_->Stop(); });
  loop_->Start();
  EXPECT_THAT(seen, ElementsAre(std::make_pair(Fd(107), kRead)));
}

TEST_F(FakeLoopTest, HandlerErrorsNameTheFd) {
  ASSERT_TRUE(loop_
                  ->AddHandler(
                      Fd(109), [](int, EventMask) {}, kRead)
                  .ok());
  absl::Status twice = loop_->AddHandler(
      Fd(109), [](int, EventMask) {}, kRead);
  EXPECT_EQ(twice.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(std::string(twice.message()), HasSubstr(absl::StrCat("fd ", Fd(109))));
  EXPECT_EQ(loop_
                ->AddHandler(
                    -2, [](int, EventMask) {}, kRead)
                .code(),
            absl::StatusCode::kInvalidArgument);
  absl::Status missing = loop_->RemoveHandler(Fd(112));
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing.message()), HasSubstr(absl::StrCat("fd ", Fd(112))));
  EXPECT_EQ(loop_->UpdateHandler(Fd(112), kWrite).code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(loop_->UpdateHandler(Fd(109), kWrite).ok());
  EXPECT_EQ(poller_->RegisteredEvents(Fd(109)), kWrite);
  ASSERT_TRUE(loop_->RemoveHandler(Fd(109)).ok());
  EXPECT_FALSE(poller_->IsRegistered(Fd(109)));
}

TEST_F(FakeLoopTest, HandlerRemovedEarlierInBatchIsNotCalled) {
  int calls_10 = 0, calls_11 = 0;
  ASSERT_TRUE(loop_
                  ->AddHandler(
                      Fd(110),
                      [&](int, EventMask) {
                        ++calls_10;
                        EXPECT_TRUE(loop_->RemoveHandler(Fd(111)).ok());
                      },
                      kRead)
                  .ok());
  ASSERT_TRUE(loop_
                  ->AddHandler(
                      Fd(111), [&](int, EventMask) { ++calls_11; }, kRead)
                  .ok());
  poller_->Inject(Fd(110), kRead);  // The fake delivers in injection order.
  poller_->Inject(Fd(111), kRead);
  loop_->AddTimeout(absl::Seconds(1), [&] { loop_->Stop(); });
  loop_->Start();
  EXPECT_EQ(calls_10, 1);
  EXPECT_EQ(calls_11, 0) << "removed handlers never see events already collected";
}

TEST_F(FakeLoopTest, NewHandlerForReusedFdNeverSeesOldEvents) {
  int old_calls = 0, new_calls = 0;
  ASSERT_TRUE(loop_
                  ->AddHandler(
                      Fd(110),
                      [&](int, EventMask) {
                        // fd 111 is "closed" and its number reused by a new connection.
                        EXPECT_TRUE(loop_->RemoveHandler(Fd(111)).ok());
                        EXPECT_TRUE(loop_
                                        ->AddHandler(
                                            Fd(111), [&](int, EventMask) { ++new_calls; }, kRead)
                                        .ok());
                      },
                      kRead)
                  .ok());
  ASSERT_TRUE(loop_
                  ->AddHandler(
                      Fd(111), [&](int, EventMask) { ++old_calls; }, kRead)
                  .ok());
  poller_->Inject(Fd(110), kRead);
  poller_->Inject(Fd(111), kRead);
  loop_->AddTimeout(absl::Seconds(1), [&] {
    EXPECT_EQ(new_calls, 0);
    poller_->Inject(Fd(111), kRead);  // A fresh event, collected after the new registration.
    loop_->AddTimeout(absl::Seconds(1), [&] { loop_->Stop(); });
  });
  loop_->Start();
  EXPECT_EQ(old_calls, 0);
  EXPECT_EQ(new_calls, 1);
}

TEST_F(FakeLoopTest, HandlerMayRemoveItselfAndIsDestroyedAfterReturning) {
  auto token = std::make_shared<int>(42);
  std::weak_ptr<int> watch = token;
  int seen_after_remove = 0;
  ASSERT_TRUE(loop_
                  ->AddHandler(
                      Fd(105),
                      [this, token, &seen_after_remove](int fd, EventMask) {
                        EXPECT_TRUE(loop_->RemoveHandler(fd).ok());
                        seen_after_remove = *token;  // Still alive: destroyed only after we return.
                      },
                      kRead)
                  .ok());
  token.reset();
  poller_->Inject(Fd(105), kRead);
  loop_->AddTimeout(absl::Seconds(1), [&] { loop_->Stop(); });
  loop_->Start();
  EXPECT_EQ(seen_after_remove, 42);
  EXPECT_TRUE(watch.expired()) << "the removed handler was destroyed";
}

TEST_F(FakeLoopTest, ExceptionsAreReportedAndTheLoopKeepsRunning) {
  ASSERT_TRUE(loop_
                  ->AddHandler(
                      Fd(103), [](int, EventMask) { throw std::runtime_error("handler"); }, kRead)
                  .ok());
  ASSERT_TRUE(loop_
                  ->AddHandler(
                      Fd(104),
                      [](int, EventMask) {
                        throw std::system_error(EPIPE, std::generic_category(), "write");
                      },
                      kRead)
                  .ok());
  poller_->Inject(Fd(103), kRead);
  poller_->Inject(Fd(104), kRead);
  loop_->AddCallback([] { throw std::runtime_error("callback"); });
  loop_->AddTimeout(absl::Seconds(1), [] { throw std::runtime_error("timeout"); });
  loop_->AddTimeout(absl::Seconds(2), [] { throw 7; });
  bool still_running = false;
  loop_->AddTimeout(absl::Seconds(3), [&] {
    still_running = true;
    loop_->Stop();
  });
  loop_->Start();
  EXPECT_TRUE(still_running);
  EXPECT_THAT(loop_->errors(),
              ElementsAre("callback", "handler", "timeout", "(not a std::exception)"))
      << "EPIPE from a handler is ignored; a non-std exception is reported too";
}

TEST(IOLoopDefaultReportTest, DefaultHandlerLogsWhat) {
  testing::FakeClock clock;
  std::vector<std::string> logs;
  IOLoop::Options options;
  options.poller = std::make_unique<testing::FakePoller>(&clock);
  options.clock = &clock;
  options.log_handler = [&](absl::string_view m) { logs.emplace_back(m); };
  IOLoop loop(std::move(options));
  loop.AddCallback([] { throw std::runtime_error("boom"); });
  loop.AddTimeout(absl::Seconds(1), [&] { loop.Stop(); });
  loop.Start();
  ASSERT_EQ(logs.size(), 1u);
  EXPECT_THAT(logs[0], HasSubstr("boom"));
}

TEST_F(FakeLoopTest, StopBeforeStartMakesNextStartReturnAtOnce) {
  loop_->Stop();
  bool ran = false;
  loop_->AddCallback([&] { ran = true; });
  loop_->Start();
  EXPECT_FALSE(ran);
  EXPECT_EQ(poller_->poll_count(), 0);
  EXPECT_FALSE(loop_->Running());
  loop_->AddCallback([&] { loop_->Stop(); });
  loop_->Start();  // The earlier stop was used up: this one runs.
  EXPECT_TRUE(ran);
}

TEST_F(FakeLoopTest, StopFinishesTheBatchThenReturnsWithoutPolling) {
  int calls = 0;
  for (int fd : {Fd(120), Fd(121), Fd(122)}) {
    ASSERT_TRUE(loop_
                    ->AddHandler(
                        fd,
                        [&](int, EventMask) {
                          ++calls;
                          loop_->Stop();
                        },
                        kRead)
                    .ok());
    poller_->Inject(fd, kRead);
  }
  loop_->AddTimeout(absl::Hours(1), [] {});
  loop_->Start();
  EXPECT_EQ(calls, 3) << "the rest of the batch still ran";
  EXPECT_EQ(poller_->poll_count(), 1) << "no poll after Stop()";
  EXPECT_FALSE(loop_->Running());
}

TEST_F(FakeLoopTest, StartingARunningLoopIsACheckFailure) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  loop_->AddCallback([&] { loop_->Start(); });
  EXPECT_DEATH(loop_->Start(), "already running");
}

TEST_F(FakeLoopTest, RunningIsTrueOnlyInsideStart) {
  EXPECT_FALSE(loop_->Running());
  bool inside = false;
  loop_->AddCallback([&] {
    inside = loop_->Running();
    loop_->Stop();
  });
  loop_->Start();
  EXPECT_TRUE(inside);
  EXPECT_FALSE(loop_->Running());
}

TEST_F(FakeLoopTest, AddCallbackOnLoopThreadSendsNoWakeup) {
  int ran = 0;
  loop_->AddCallback([&] {
    for (int i = 0; i < 100; ++i) loop_->AddCallback([&] { ++ran; });
    loop_->AddCallback([&] { loop_->Stop(); });
  });
  const uint64_t before = loop_->Metrics().wakeups_sent;
  loop_->Start();
  EXPECT_EQ(ran, 100);
  EXPECT_EQ(loop_->Metrics().wakeups_sent - before, 0u);
}

TEST_F(FakeLoopTest, PostsToALoopThatIsNotPollingSendNoWakeup) {
  // The loop is not running, so it will look at its queue before it ever sleeps.
  for (int i = 0; i < 1000; ++i) loop_->AddCallback([] {});
  EXPECT_EQ(loop_->Metrics().wakeups_sent, 0u);
}

IOLoop* g_signal_loop = nullptr;
void StopFromSignalCallback() { g_signal_loop->Stop(); }
void OnSigusr1(int) { g_signal_loop->AddCallbackFromSignal(&StopFromSignalCallback); }

TEST_F(FakeLoopTest, AddCallbackFromARealSignalHandler) {
  g_signal_loop = loop_;
  struct sigaction action = {}, old;
  action.sa_handler = &OnSigusr1;
  ASSERT_EQ(sigaction(SIGUSR1, &action, &old), 0);
  loop_->AddCallback([] { raise(SIGUSR1); });  // Delivered to this (the loop) thread.
  loop_->AddTimeout(absl::Hours(1),
                    [] { FAIL() << "the signal's callback should have stopped the loop"; });
  loop_->Start();
  sigaction(SIGUSR1, &old, nullptr);
  EXPECT_LT(clock_.Now() - start_, absl::Hours(1));
  EXPECT_EQ(loop_->Metrics().signal_callbacks_dropped, 0u);
}

TEST_F(FakeLoopTest, SignalQueueOverflowIsCountedAndLogged) {
  int ran = 0;
  static int* counter;
  counter = &ran;
  const int extra = 44;
  for (size_t i = 0; i < IOLoop::kSignalQueueCapacity + extra; ++i) {
    loop_->AddCallbackFromSignal(+[] { ++*counter; });
  }
  EXPECT_EQ(loop_->Metrics().signal_callbacks_dropped, static_cast<uint64_t>(extra));
  loop_->AddCallback([&] { loop_->Stop(); });
  loop_->Start();
  EXPECT_EQ(ran, static_cast<int>(IOLoop::kSignalQueueCapacity));
  ASSERT_EQ(logs_.size(), 1u);
  EXPECT_THAT(logs_[0], HasSubstr("44 callbacks dropped"));
}

TEST_F(FakeLoopTest, CloseAllFdsClosesHandlerFds) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  ASSERT_TRUE(loop_
                  ->AddHandler(
                      fds[0], [](int, EventMask) {}, kRead)
                  .ok());
  ASSERT_TRUE(loop_
                  ->AddHandler(
                      fds[1], [](int, EventMask) {}, kWrite)
                  .ok());
  ASSERT_TRUE(loop_->Close(/*all_fds=*/true).ok());
  EXPECT_EQ(fcntl(fds[0], F_GETFD), -1);
  EXPECT_EQ(fcntl(fds[1], F_GETFD), -1);
  EXPECT_EQ(loop_
                ->AddHandler(
                    fds[0], [](int, EventMask) {}, kRead)
                .code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(FakeLoopTest, CloseWithoutAllFdsLeavesThemOpen) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  ASSERT_TRUE(loop_
                  ->AddHandler(
                      fds[0], [](int, EventMask) {}, kRead)
                  .ok());
  ASSERT_TRUE(loop_->Close().ok());
  EXPECT_NE(fcntl(fds[0], F_GETFD), -1);
  close(fds[0]);
  close(fds[1]);
}

TEST_F(FakeLoopTest, CloseWhileRunningFails) {
  absl::Status status;
  loop_->AddCallback([&] {
    status = loop_->Close();
    loop_->Stop();
  });
  loop_->Start();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
}

TEST(IOLoopInstanceTest, InstallAndInstance) {
  testing::FakeClock clock;
  IOLoop::Options options;
  options.poller = std::make_unique<testing::FakePoller>(&clock);
  options.clock = &clock;
  {
    IOLoop loop(std::move(options));
    loop.Install();
    EXPECT_TRUE(IOLoop::Initialized());
    EXPECT_EQ(&IOLoop::Instance(), &loop);
  }
  EXPECT_FALSE(IOLoop::Initialized()) << "a destroyed installed loop is no longer the instance";
  IOLoop& created = IOLoop::Instance();
  EXPECT_TRUE(IOLoop::Initialized());
  EXPECT_EQ(&IOLoop::Instance(), &created);
}

}  // namespace
}  // namespace ioloop
