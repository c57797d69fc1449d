// The loop on every real backend of this platform, with real fds and threads.

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "backends/default_poller.h"
#include "gtest/gtest.h"
#include "ioloop/io_loop.h"
#include "testing/backends.h"
#include "testing/fd_pairs.h"
#include "testing/real_loop.h"

namespace ioloop {
namespace {

class RealLoopTest : public testing::RealLoopFixture {
 protected:
  static void SocketPair(int fds[2]) { ASSERT_TRUE(testing::MakeSocketPair(fds).ok()); }
};

TEST_P(RealLoopTest, PingPongOverASocketPair) {
  int fds[2];
  SocketPair(fds);
  int rounds = 0;
  auto bounce = [&](int fd, EventMask events) {
    ASSERT_TRUE(events & kRead);
    char c;
    ASSERT_EQ(read(fd, &c, 1), 1);
    if (++rounds == 1000) {
      loop_->Stop();
      return;
    }
    ASSERT_EQ(write(fd, &c, 1), 1);
  };
  ASSERT_TRUE(loop_->AddHandler(fds[0], bounce, kRead).ok());
  ASSERT_TRUE(loop_->AddHandler(fds[1], bounce, kRead).ok());
  ASSERT_EQ(write(fds[0], "p", 1), 1);
  loop_->Start();
  EXPECT_EQ(rounds, 1000);
  ASSERT_TRUE(loop_->Close(/*all_fds=*/true).ok());
  EXPECT_EQ(fcntl(fds[0], F_GETFD), -1);
}

TEST_P(RealLoopTest, CallbackFromAnotherThreadWakesAnIdleLoop) {
  std::atomic<bool> ran{false};
  std::thread other;
  loop_->AddCallback([&] {
    // The loop is now running and about to sleep without limit.
    other = std::thread([&] {
      loop_->AddCallback([&] {
        ran = true;
        loop_->Stop();
      });
    });
  });
  loop_->Start();
  other.join();
  EXPECT_TRUE(ran);
}

TEST_P(RealLoopTest, StopFromAnotherThreadWakesAnIdleLoop) {
  std::thread other;
  loop_->AddCallback([&] { other = std::thread([&] { loop_->Stop(); }); });
  loop_->Start();
  other.join();
  EXPECT_FALSE(loop_->Running());
}

TEST_P(RealLoopTest, EveryCrossThreadCallbackRunsExactlyOnce) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 20000;
  std::vector<int> counts(kThreads * kPerThread, 0);
  std::atomic<int> producers_done{0};
  std::vector<std::thread> producers;
  loop_->AddCallback([&] {
    for (int t = 0; t < kThreads; ++t) {
      producers.emplace_back([&, t] {
        for (int i = 0; i < kPerThread; ++i) {
          loop_->AddCallback([&counts, index = t * kPerThread + i] { ++counts[index]; });
        }
        if (producers_done.fetch_add(1) + 1 == kThreads) {
          loop_->AddCallback([&] { loop_->Stop(); });  // Queued after all the others.
        }
      });
    }
  });
  loop_->Start();
  for (std::thread& t : producers) t.join();
  int wrong = 0;
  for (int c : counts) wrong += (c != 1);
  EXPECT_EQ(wrong, 0);
  EXPECT_LE(loop_->Metrics().wakeups_sent, static_cast<uint64_t>(kThreads * kPerThread + 1));
}

TEST_P(RealLoopTest, ReusedFdNumberNeverGetsTheOldRegistrationsEvents) {
  int a[2], b[2];
  SocketPair(a);
  SocketPair(b);
  // Both a[0] and b[0] become readable in the same poll.
  ASSERT_EQ(write(a[1], "x", 1), 1);
  ASSERT_EQ(write(b[1], "x", 1), 1);
  int old_calls = 0, new_calls = 0, first_calls = 0;
  int reused[2] = {-1, -1};
  auto first = [&](int fd, EventMask) {
    ++first_calls;
    // Whichever runs first closes the other fd and reuses its number at once.
    const int victim = (fd == a[0]) ? b[0] : a[0];
    ASSERT_TRUE(loop_->RemoveHandler(victim).ok());
    close(victim);
    SocketPair(reused);
    ASSERT_EQ(reused[0], victim) << "the lowest free number is reused";
    ASSERT_TRUE(loop_
                    ->AddHandler(
                        reused[0], [&](int, EventMask) { ++new_calls; }, kRead)
                    .ok());
    ASSERT_TRUE(loop_->RemoveHandler(fd).ok());
    loop_->AddCallback([&] { loop_->Stop(); });
  };
  auto old = [&](int fd, EventMask e) {
    ++old_calls;
    first(fd, e);
  };
  ASSERT_TRUE(loop_->AddHandler(a[0], first, kRead).ok());
  ASSERT_TRUE(loop_->AddHandler(b[0], old, kRead).ok());
  loop_->Start();
  EXPECT_EQ(first_calls, 1);
  EXPECT_EQ(new_calls, 0) << "the new connection has no data: any call came from the old fd";
  for (int fd : {a[0], a[1], b[0], b[1], reused[1]}) close(fd);
}

TEST_P(RealLoopTest, TimeoutsUseTheRealClock) {
  const absl::Time start = loop_->Time();
  absl::Time fired;
  loop_->AddTimeout(absl::Milliseconds(20), [&] {
    fired = loop_->Time();
    loop_->Stop();
  });
  loop_->Start();
  EXPECT_GE(fired - start, absl::Milliseconds(20));
}

TEST_P(RealLoopTest, LibraryFdsAreCloseOnExec) {
  // Every fd a new loop opens: its poller's own fd (if any) and its waker's. Found by
  // comparing the open fds before and after, which works on every platform (Linux's
  // /proc/self/fd names them, macOS has no such view).
  const auto open_fds = [] {
    std::vector<int> fds;
    for (int fd = 0; fd < 1024; ++fd) {
      if (fcntl(fd, F_GETFD) >= 0) fds.push_back(fd);
    }
    return fds;
  };
  const std::vector<int> before = open_fds();
  auto poller = NewPoller(GetParam());
  ASSERT_TRUE(poller.ok()) << poller.status();
  IOLoop::Options options;
  options.poller = *std::move(poller);
  IOLoop loop(std::move(options));
  int opened = 0;
  for (int fd : open_fds()) {
    if (std::find(before.begin(), before.end(), fd) != before.end()) continue;
    ++opened;
    EXPECT_TRUE(fcntl(fd, F_GETFD) & FD_CLOEXEC) << "fd " << fd;
  }
  EXPECT_GE(opened, 1);
}

INSTANTIATE_TEST_SUITE_P(EveryBackend, RealLoopTest, ::testing::ValuesIn(testing::RealBackends()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace ioloop
