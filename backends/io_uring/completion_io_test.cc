// The io_uring poller's CompletionIo (backends/completion_io.h) on its own: multishot
// receives and sends submitted by Poll() and run by RunCompleted(), pausing and resuming,
// a buffer pool run dry, each way of cancelling (before submission, in the kernel, from
// its own callback, finished but not yet run), plus destroying the poller with
// operations in the kernel (ASan/LSan). Readiness backends offer none.

#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
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
  io_->RecvMany(fds_[1], 1 << 16, [&](int r, absl::string_view data) {
    result = r;
    absl::StrAppend(&got, data);
    return data.size();
  });
  EXPECT_EQ(Step(absl::Seconds(5)), 1u);
  EXPECT_EQ(result, 5);
  EXPECT_EQ(got, "hello");
}

TEST_F(CompletionIoTest, SendCopyTakesItsOwnCopy) {
  std::string bytes(CompletionIo::kMaxSendCopyBytes, 'c');
  int sent = 0;
  io_->SendCopy(fds_[0], bytes, [&](int result) { sent = result; });
  bytes.assign(bytes.size(), 'X');  // The caller's buffer changes before the send runs.
  EXPECT_EQ(Step(absl::Seconds(5)), 1u);
  EXPECT_EQ(sent, static_cast<int>(CompletionIo::kMaxSendCopyBytes));
  char buf[1024];
  ASSERT_EQ(read(fds_[1], buf, sizeof buf), static_cast<ssize_t>(CompletionIo::kMaxSendCopyBytes));
  EXPECT_EQ(std::string(buf, CompletionIo::kMaxSendCopyBytes),
            std::string(CompletionIo::kMaxSendCopyBytes, 'c'));
}

TEST_F(CompletionIoTest, RecvManyStaysArmedAndEndsAtEof) {
  std::vector<int> results;
  std::string got;
  io_->RecvMany(fds_[1], 1 << 16, [&](int r, absl::string_view data) {
    results.push_back(r);
    absl::StrAppend(&got, data);
    return data.size();
  });
  EXPECT_EQ(Step(), 0u) << "no data yet";
  ASSERT_EQ(write(fds_[0], "one", 3), 3);
  EXPECT_EQ(Step(absl::Seconds(5)), 1u);
  ASSERT_EQ(write(fds_[0], "two", 3), 3);
  EXPECT_EQ(Step(absl::Seconds(5)), 1u) << "still armed: no new receive needed";
  close(fds_[0]);
  fds_[0] = -1;
  EXPECT_EQ(Step(absl::Seconds(5)), 1u);
  EXPECT_EQ(got, "onetwo");
  EXPECT_EQ(results, (std::vector<int>{3, 3, 0})) << "EOF ends it";
  EXPECT_EQ(Step(), 0u) << "nothing after the end";
}

// Taking fewer bytes than given pauses the receive: the rest, what arrives meanwhile
// and the EOF after it all wait, in order, until Resume().
TEST_F(CompletionIoTest, TakingLessPausesUntilResumeAndKeepsOrder) {
  std::string got;
  std::vector<int> results;
  size_t budget = 2;
  const CompletionIo::OpId op = io_->RecvMany(fds_[1], 1 << 16, [&](int r, absl::string_view data) {
    results.push_back(r);
    const size_t take = std::min(budget, data.size());
    absl::StrAppend(&got, data.substr(0, take));
    budget -= take;
    return take;
  });
  ASSERT_EQ(write(fds_[0], "abcde", 5), 5);
  EXPECT_EQ(Step(absl::Seconds(5)), 1u);
  EXPECT_EQ(got, "ab");
  ASSERT_EQ(write(fds_[0], "fgh", 3), 3);
  close(fds_[0]);
  fds_[0] = -1;
  for (int i = 0; i < 3; ++i) EXPECT_EQ(Step(absl::Milliseconds(20)), 0u) << "paused";
  EXPECT_EQ(got, "ab");
  budget = 100;
  io_->Resume(op);
  std::string before_poll = got;
  EXPECT_EQ(before_poll, "ab") << "never inside Resume()";
  for (int i = 0; i < 50 && (results.empty() || results.back() != 0); ++i) {
    Step(absl::Milliseconds(100));
  }
  EXPECT_EQ(got, "abcdefgh");
  ASSERT_FALSE(results.empty());
  EXPECT_EQ(results.back(), 0) << "the EOF comes after the bytes";
}

// A receive that takes nothing pauses; the kernel stops at the arming's limit (plus at
// most the buffer that crossed it), so the rest stays in the socket, not in memory.
TEST_F(CompletionIoTest, APausedReceiveLeavesTheRestInTheSocket) {
  const std::string flood(100000, 'f');
  size_t sent = 0;
  for (ssize_t n;
       sent < flood.size() && (n = write(fds_[0], flood.data() + sent, flood.size() - sent)) > 0;) {
    sent += static_cast<size_t>(n);
  }
  ASSERT_GT(sent, size_t{16384});
  int calls = 0;
  io_->RecvMany(fds_[1], 4096, [&](int, absl::string_view) {
    ++calls;
    return size_t{0};
  });
  for (int i = 0; i < 5; ++i) Step(absl::Milliseconds(10));
  EXPECT_EQ(calls, 1) << "paused after the first run";
  int unread = 0;
  ASSERT_EQ(ioctl(fds_[1], FIONREAD, &unread), 0);
  EXPECT_GE(static_cast<size_t>(unread), sent - 4096 - 2048);
}

// A pool of two buffers for four sockets: receives that find it empty (ENOBUFS) re-arm
// once buffers are back, and every byte arrives, in order.
TEST(CompletionIoPool, ReceivesThatRunThePoolDryGoOn) {
  auto made = NewIoUringPollerForTesting(2);
  if (!made.ok()) GTEST_SKIP() << made.status();
  std::unique_ptr<Poller> poller = *std::move(made);
  CompletionIo* io = poller->completion_io();
  ASSERT_NE(io, nullptr);
  constexpr int kSockets = 4, kRounds = 20;
  int fds[kSockets][2];
  std::string got[kSockets];
  for (int i = 0; i < kSockets; ++i) {
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, fds[i]), 0);
    io->RecvMany(fds[i][1], 1 << 16, [&got, i](int r, absl::string_view data) {
      absl::StrAppend(&got[i], data);
      return data.size();
    });
  }
  std::string want;
  for (int round = 0; round < kRounds; ++round) {
    const std::string message = absl::StrCat(round, ";");
    want += message;
    for (auto& pair : fds) {
      ASSERT_EQ(write(pair[0], message.data(), message.size()), ssize_t(message.size()));
    }
    std::vector<PollEvent> ready;
    ASSERT_TRUE(poller->Poll(absl::Milliseconds(10), ready).ok());
    io->RunCompleted([](absl::FunctionRef<void()> f) { f(); });
  }
  for (int i = 0; i < 200; ++i) {
    bool all = true;
    for (const std::string& g : got) all = all && g.size() == want.size();
    if (all) break;
    std::vector<PollEvent> ready;
    ASSERT_TRUE(poller->Poll(absl::Milliseconds(10), ready).ok());
    io->RunCompleted([](absl::FunctionRef<void()> f) { f(); });
  }
  for (const std::string& g : got) EXPECT_EQ(g, want);
  poller.reset();
  for (auto& pair : fds) {
    close(pair[0]);
    close(pair[1]);
  }
}

// More sockets with bytes waiting than the buffer ring starts with: the receives that
// find it empty make it grow, and every socket gets its own bytes, twice over (the
// second round on the grown ring).
TEST(CompletionIoPool, MoreSocketsThanTheRingStartsWithAllReceive) {
  auto made = NewIoUringPoller();
  if (!made.ok()) GTEST_SKIP() << made.status();
  std::unique_ptr<Poller> poller = *std::move(made);
  CompletionIo* io = poller->completion_io();
  ASSERT_NE(io, nullptr);
  constexpr int kSockets = 300;
  std::vector<std::array<int, 2>> fds(kSockets);
  std::vector<std::string> got(kSockets), want(kSockets);
  for (int i = 0; i < kSockets; ++i) {
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, fds[i].data()), 0);
  }
  EXPECT_EQ(IoUringRecvBuffersForTesting(*poller), 0u) << "registered at the first receive";
  unsigned first_round_buffers = 0;
  for (int round = 0; round < 2; ++round) {
    for (int i = 0; i < kSockets; ++i) {
      const std::string message = absl::StrCat("socket ", i, " round ", round, ";");
      want[i] += message;
      ASSERT_EQ(write(fds[i][0], message.data(), message.size()), ssize_t(message.size()));
    }
    if (round == 0) {
      for (int i = 0; i < kSockets; ++i) {
        io->RecvMany(fds[i][1], 1 << 16, [&got, i](int, absl::string_view data) {
          absl::StrAppend(&got[i], data);
          return data.size();
        });
      }
    }
    for (int step = 0; step < 500 && got != want; ++step) {
      std::vector<PollEvent> ready;
      ASSERT_TRUE(poller->Poll(absl::Milliseconds(10), ready).ok());
      io->RunCompleted([](absl::FunctionRef<void()> f) { f(); });
    }
    for (int i = 0; i < kSockets; ++i) ASSERT_EQ(got[i], want[i]) << "socket " << i;
    if (round == 0) first_round_buffers = IoUringRecvBuffersForTesting(*poller);
  }
  EXPECT_GT(first_round_buffers, 64u) << "300 waiting receives grow the ring past 64";
  EXPECT_LE(IoUringRecvBuffersForTesting(*poller), 1024u);
  EXPECT_GE(IoUringRecvBuffersForTesting(*poller), first_round_buffers);
  poller.reset();
  for (auto& pair : fds) {
    close(pair[0]);
    close(pair[1]);
  }
}

// A receive at a time on one socket never finds the ring empty: it stays at 64.
TEST_F(CompletionIoTest, OneStreamLeavesTheRingAtItsStartingSize) {
  std::string got;
  io_->RecvMany(fds_[1], 1 << 16, [&](int, absl::string_view data) {
    absl::StrAppend(&got, data);
    return data.size();
  });
  for (int i = 0; i < 20; ++i) {
    ASSERT_EQ(write(fds_[0], "ping", 4), 4);
    for (int step = 0; step < 100 && got.size() < 4u * (i + 1); ++step) {
      Step(absl::Milliseconds(10));
    }
  }
  EXPECT_EQ(got.size(), 80u);
  EXPECT_EQ(IoUringRecvBuffersForTesting(*poller_), 64u);
}

TEST_F(CompletionIoTest, BytesBeyondOneBufferArriveWholeAndInOrder) {
  std::string want(1 << 20, '\0');
  for (size_t i = 0; i < want.size(); ++i) want[i] = static_cast<char>('a' + i % 26);
  std::string got;
  io_->RecvMany(fds_[1], 1 << 16, [&](int, absl::string_view data) {
    absl::StrAppend(&got, data);
    return data.size();
  });
  size_t sent = 0;
  for (int i = 0; i < 10000 && got.size() < want.size(); ++i) {
    if (sent < want.size()) {
      const ssize_t n = write(fds_[0], want.data() + sent, want.size() - sent);
      if (n > 0) sent += static_cast<size_t>(n);
    }
    Step(absl::Milliseconds(10));
  }
  EXPECT_EQ(got.size(), want.size());
  EXPECT_TRUE(got == want) << "bytes out of order";
}

// More runs of bytes than the kernel receives in a row for one arming, with the EOF
// already pending behind them: the receive still ends with the EOF.
TEST_F(CompletionIoTest, EofBehindALongBurstStillEndsTheReceive) {
  const std::string burst(200000, 'b');
  size_t sent = 0;
  for (ssize_t n;
       sent < burst.size() && (n = write(fds_[0], burst.data() + sent, burst.size() - sent)) > 0;) {
    sent += static_cast<size_t>(n);
  }
  ASSERT_GT(sent, size_t{100000}) << "the socket should hold over 32 buffers' worth";
  close(fds_[0]);
  fds_[0] = -1;
  size_t got = 0;
  std::vector<int> ends;
  io_->RecvMany(fds_[1], 1 << 20, [&](int r, absl::string_view data) {
    if (r <= 0) ends.push_back(r);
    got += data.size();
    return data.size();
  });
  for (int i = 0; i < 100 && ends.empty(); ++i) Step(absl::Milliseconds(50));
  EXPECT_EQ(got, sent);
  EXPECT_EQ(ends, std::vector<int>{0});
}

// Many operations in turn reuse one record: their ids (the record's slot and a
// sequence number) grow past what 32 bits hold above the slot, and each still runs.
TEST_F(CompletionIoTest, ThousandsOfOperationsInTurnAllRun) {
  constexpr int kOps = 10000;
  int ran = 0;
  char sink[64];
  for (int i = 0; i < kOps; ++i) {
    io_->Send(fds_[0], absl::Cord("x"), [&](int result) { ran += result == 1; });
    for (int step = 0; step < 100 && ran == i; ++step) Step(absl::Milliseconds(10));
    ASSERT_EQ(ran, i + 1) << "operation " << i << " never ran";
    ASSERT_EQ(read(fds_[1], sink, sizeof sink), 1);
  }
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
  const CompletionIo::OpId op = io_->RecvMany(fds_[1], 1 << 16, [&](int, absl::string_view data) {
    called = true;
    return data.size();
  });
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

// A callback that cancels its own receive and starts another (which may reuse the
// record) gets no more calls for the old one; the new one gets the later bytes.
TEST_F(CompletionIoTest, CallbackCancelsItselfAndStartsAnother) {
  std::string first, second;
  CompletionIo::OpId op = 0;
  op = io_->RecvMany(fds_[1], 1 << 16, [&](int, absl::string_view data) {
    absl::StrAppend(&first, data);
    io_->Cancel(op);
    op = io_->RecvMany(fds_[1], 1 << 16, [&](int, absl::string_view more) {
      absl::StrAppend(&second, more);
      return more.size();
    });
    return data.size();
  });
  ASSERT_EQ(write(fds_[0], "x", 1), 1);
  EXPECT_EQ(Step(absl::Seconds(5)), 1u);
  EXPECT_EQ(first, "x");
  for (int i = 0; i < 3; ++i) Step();  // The new receive is armed.
  ASSERT_EQ(write(fds_[0], "yz", 2), 2);
  for (int i = 0; i < 50 && second.size() < 2; ++i) Step(absl::Milliseconds(100));
  EXPECT_EQ(first, "x");
  EXPECT_EQ(second, "yz");
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
  io_->RecvMany(fds_[0], 1 << 16, [](int, absl::string_view data) { return data.size(); });
  // A paused receive holding bytes, too.
  io_->RecvMany(fds_[1], 1 << 16, [](int, absl::string_view) { return size_t{0}; });
  ASSERT_EQ(write(fds_[0], "held", 4), 4);
  const std::string big(4 << 20, 'x');  // More than the socket takes: the send waits.
  io_->Send(fds_[0], absl::Cord(big), [](int) {});
  io_->Send(fds_[0], absl::Cord(big), [](int) {});
  Step();
  Step(absl::Milliseconds(10));
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
