// The io_uring poller's CompletionIo (backends/completion_io.h) on its own: receives and
// sends submitted by Poll() and run by RunCompleted(), and each way of cancelling (before
// submission, in the kernel, finished but not yet run), plus destroying the poller with
// operations in the kernel (ASan/LSan). Readiness backends offer none.

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/cord.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "backends/default_poller.h"
#include "backends/io_uring/io_uring_poller.h"
#include "gtest/gtest.h"

namespace ioloop {
namespace {

class CompletionIoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto poller = NewIoUringPoller();
    if (!poller.ok()) GTEST_SKIP() << poller.status();
    poller_ = *std::move(poller);
    io_ = poller_->completion_io();
    ASSERT_NE(io_, nullptr);
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, fds_), 0);
  }
  void TearDown() override {
    poller_.reset();  // Before the fds: it cancels what is in flight.
    for (int fd : fds_) {
      if (fd >= 0) close(fd);
    }
  }
  // Step() polls once (waiting up to `wait`) and runs what finished.
  size_t Step(absl::Duration wait = absl::ZeroDuration()) {
    std::vector<PollEvent> ready;
    EXPECT_TRUE(poller_->Poll(wait, ready).ok());
    return io_->RunCompleted([](absl::FunctionRef<void()> f) { f(); });
  }

  std::unique_ptr<Poller> poller_;
  CompletionIo* io_ = nullptr;
  int fds_[2] = {-1, -1};
};

TEST_F(CompletionIoTest, SendAndRecvCompleteThroughPollAndRunCompleted) {
  int sent = 0;
  io_->Send(fds_[0], absl::Cord("hello"), [&](int result) { sent = result; });
  EXPECT_EQ(sent, 0) << "never inside the call";
  EXPECT_EQ(Step(absl::Seconds(5)), 1u);
  EXPECT_EQ(sent, 5);
  std::string got;
  int result = -1;
  io_->Recv(fds_[1], 64, [&](int r, absl::string_view data) {
    result = r;
    got = std::string(data);
  });
  EXPECT_EQ(Step(absl::Seconds(5)), 1u);
  EXPECT_EQ(result, 5);
  EXPECT_EQ(got, "hello");
}

TEST_F(CompletionIoTest, RecvWaitsForDataAndReportsEof) {
  int result = -1;
  io_->Recv(fds_[1], 64, [&](int r, absl::string_view) { result = r; });
  EXPECT_EQ(Step(), 0u) << "no data yet";
  close(fds_[0]);
  fds_[0] = -1;
  EXPECT_EQ(Step(absl::Seconds(5)), 1u);
  EXPECT_EQ(result, 0) << "EOF";
}

TEST_F(CompletionIoTest, CancelBeforeSubmissionMeansNothingHappened) {
  bool called = false;
  const CompletionIo::OpId op =
      io_->Send(fds_[0], absl::Cord("never"), [&](int) { called = true; });
  EXPECT_TRUE(io_->Cancel(op));
  EXPECT_FALSE(io_->Cancel(op)) << "a second cancel is a no-op";
  EXPECT_EQ(Step(), 0u);
  EXPECT_FALSE(called);
  char buf[8];
  EXPECT_EQ(read(fds_[1], buf, sizeof buf), -1) << "nothing was sent";
  EXPECT_EQ(errno, EAGAIN);
}

TEST_F(CompletionIoTest, CancelInTheKernelDropsTheCallbackAndReleasesTheFile) {
  bool called = false;
  const CompletionIo::OpId op =
      io_->Recv(fds_[1], 64, [&](int, absl::string_view) { called = true; });
  EXPECT_EQ(Step(), 0u);  // Submitted; waiting for data.
  EXPECT_FALSE(io_->Cancel(op));
  close(fds_[1]);  // The receive no longer holds the file: the peer sees the close.
  fds_[1] = -1;
  pollfd p{fds_[0], POLLIN, 0};
  ASSERT_EQ(poll(&p, 1, 5000), 1);
  EXPECT_NE(p.revents & POLLHUP, 0);
  EXPECT_EQ(Step(), 0u);
  EXPECT_FALSE(called);
}

TEST_F(CompletionIoTest, CancelAfterCompletionBeforeItsCallbackRanSkipsIt) {
  std::vector<int> ran;
  CompletionIo::OpId second = 0;
  io_->Send(fds_[0], absl::Cord("a"), [&](int) {
    ran.push_back(1);
    io_->Cancel(second);  // Finished in the same poll: its callback must not run.
  });
  second = io_->Send(fds_[0], absl::Cord("b"), [&](int) { ran.push_back(2); });
  EXPECT_EQ(Step(absl::Seconds(5)), 1u);
  EXPECT_EQ(ran, std::vector<int>{1});
}

TEST_F(CompletionIoTest, DestroyingThePollerWithOperationsInTheKernelFreesThem) {
  for (int i = 0; i < 4; ++i) io_->Recv(fds_[0], 1 << 16, [](int, absl::string_view) {});
  const std::string big(4 << 20, 'x');  // More than the socket takes: the send waits.
  io_->Send(fds_[0], absl::Cord(big), [](int) {});
  io_->Send(fds_[0], absl::Cord(big), [](int) {});
  Step();
  poller_.reset();  // Cancels and waits for the kernel; LSan checks nothing leaks.
}

TEST(CompletionIoAvailability, ReadinessBackendsHaveNone) {
  for (absl::string_view name : AvailablePollers()) {
    auto poller = NewPoller(name);
    ASSERT_TRUE(poller.ok()) << poller.status();
    EXPECT_EQ((*poller)->completion_io() != nullptr, name == "io_uring") << name;
  }
}

}  // namespace
}  // namespace ioloop
