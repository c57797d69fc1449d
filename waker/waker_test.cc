#include <fcntl.h>
#include <poll.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "waker/default_waker.h"
#include "waker/pipe_waker.h"
#ifdef IOLOOP_HAVE_EVENTFD
#include "waker/eventfd_waker.h"
#endif

namespace ioloop {
namespace {

using Factory = absl::StatusOr<std::unique_ptr<Waker>> (*)();

struct Variant {
  std::string name;
  Factory factory;
};

std::vector<Variant> Variants() {
  std::vector<Variant> v = {{"pipe", &NewPipeWaker}};
#ifdef IOLOOP_HAVE_EVENTFD
  v.push_back({"eventfd", &NewEventFdWaker});
#endif
  return v;
}

bool Readable(int fd, int timeout_ms = 0) {
  pollfd p{fd, POLLIN, 0};
  return poll(&p, 1, timeout_ms) == 1 && (p.revents & POLLIN);
}

class WakerTest : public ::testing::TestWithParam<Variant> {
 protected:
  void SetUp() override {
    auto w = GetParam().factory();
    ASSERT_TRUE(w.ok()) << w.status();
    waker_ = *std::move(w);
  }
  std::unique_ptr<Waker> waker_;
};

TEST_P(WakerTest, NameMatchesMechanism) { EXPECT_EQ(waker_->Name(), GetParam().name); }

TEST_P(WakerTest, DescriptorIsNonBlockingAndCloseOnExec) {
  EXPECT_TRUE(fcntl(waker_->fd(), F_GETFD) & FD_CLOEXEC);
  EXPECT_TRUE(fcntl(waker_->fd(), F_GETFL) & O_NONBLOCK);
}

TEST_P(WakerTest, WakeMakesReadableAndConsumeDrains) {
  EXPECT_FALSE(Readable(waker_->fd()));
  ASSERT_TRUE(waker_->Wake().ok());
  ASSERT_TRUE(waker_->Wake().ok());
  EXPECT_TRUE(Readable(waker_->fd()));
  waker_->Consume();
  EXPECT_FALSE(Readable(waker_->fd()));
}

TEST_P(WakerTest, ConsumeWithNothingPendingDoesNotBlock) {
  for (int i = 0; i < 3; ++i) waker_->Consume();  // A blocking read would hang here.
  EXPECT_FALSE(Readable(waker_->fd()));
}

TEST_P(WakerTest, ManyWakesNeverBlockEvenWhenFull) {
  // 200,000 wakes overfill a 64 KiB pipe three times over; each must return at once.
  for (int i = 0; i < 200000; ++i) ASSERT_TRUE(waker_->Wake().ok()) << "wake " << i;
  EXPECT_TRUE(Readable(waker_->fd()));
  waker_->Consume();
  EXPECT_FALSE(Readable(waker_->fd()));
}

TEST_P(WakerTest, WakePreservesErrno) {
  errno = ERANGE;
  ASSERT_TRUE(waker_->Wake().ok());
  EXPECT_EQ(errno, ERANGE);
}

TEST_P(WakerTest, EightThreadsWakeWhileReaderConsumes) {
  constexpr int kThreads = 8;
  constexpr int kWakesPerThread = 100000;
  std::atomic<int> writers_left{kThreads};
  std::atomic<int> failures{0};
  int consumed_rounds = 0;
  std::thread reader([&] {
    while (writers_left.load() > 0) {
      if (Readable(waker_->fd(), 10)) {
        waker_->Consume();
        ++consumed_rounds;
      }
    }
  });
  std::vector<std::thread> writers;
  for (int t = 0; t < kThreads; ++t) {
    writers.emplace_back([&] {
      for (int i = 0; i < kWakesPerThread; ++i) {
        if (!waker_->Wake().ok()) failures.fetch_add(1);
      }
      writers_left.fetch_sub(1);
    });
  }
  for (std::thread& t : writers) t.join();
  reader.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_GT(consumed_rounds, 0);
  // A wake after the last consume is never lost.
  ASSERT_TRUE(waker_->Wake().ok());
  EXPECT_TRUE(Readable(waker_->fd()));
  waker_->Consume();
  EXPECT_FALSE(Readable(waker_->fd()));
}

TEST(DefaultWakerTest, IsThePlatformMechanism) {
  auto w = NewDefaultWaker();
  ASSERT_TRUE(w.ok()) << w.status();
#ifdef IOLOOP_HAVE_EVENTFD
  EXPECT_EQ((*w)->Name(), "eventfd");
#else
  EXPECT_EQ((*w)->Name(), "pipe");
#endif
}

INSTANTIATE_TEST_SUITE_P(AllMechanisms, WakerTest, ::testing::ValuesIn(Variants()),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace ioloop
