// What only the io_uring backend has: refusal by the kernel, a poller moving between
// threads, and many Modify() calls batched into one submission. The build-flag fallback
// to epoll is tested in backends/default_poller_test.cc.
// The shared behaviour is in backends/poller_conformance_test.cc.

#include "backends/io_uring/io_uring_poller.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "backends/io_uring/testing/refuse_io_uring.h"
#include "gtest/gtest.h"

namespace ioloop {
namespace {

struct Pair {
  int a = -1, b = -1;
  Pair() {
    int fds[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) == 0) {
      a = fds[0];
      b = fds[1];
    }
  }
  ~Pair() {
    if (a >= 0) close(a);
    if (b >= 0) close(b);
  }
};

class IoUringPollerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (absl::Status s = IoUringSupport(); !s.ok()) GTEST_SKIP() << s;
  }
};

TEST_F(IoUringPollerTest, KernelRefusalIsUnavailableNamingTheCause) {
  for (int error : {EPERM, ENOSYS}) {
    absl::Status status;
    bool filtered = false;
    std::thread([&] {
      filtered = RefuseIoUringSetupForTesting(error);
      if (filtered) status = NewIoUringPoller().status();
    }).join();
    if (!filtered) GTEST_SKIP() << "cannot install a seccomp filter here";
    SCOPED_TRACE(error);
    EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
    EXPECT_TRUE(absl::StrContains(status.message(), "io_uring_setup")) << status;
    EXPECT_TRUE(absl::StrContains(status.message(), "seccomp")) << status;
  }
  // This thread was not filtered.
  EXPECT_TRUE(NewIoUringPoller().ok());
}

TEST_F(IoUringPollerTest, PollingFromAnotherThreadKeepsEveryRegistration) {
  auto made = NewIoUringPoller();
  ASSERT_TRUE(made.ok()) << made.status();
  std::unique_ptr<Poller> poller = *std::move(made);
  Pair p, q;
  ASSERT_TRUE(poller->Register(p.a, kRead).ok());
  ASSERT_TRUE(poller->Register(q.a, kWrite).ok());
  std::vector<PollEvent> ready;
  ASSERT_TRUE(poller->Poll(absl::ZeroDuration(), ready).ok());
  EXPECT_EQ(ready, (std::vector<PollEvent>{{q.a, kWrite}}));
  ASSERT_EQ(write(p.b, "x", 1), 1);
  for (int round = 0; round < 2; ++round) {  // Twice: away, then back to this thread.
    ready.clear();
    absl::Status status;
    auto poll = [&] { status = poller->Poll(absl::Seconds(5), ready); };
    if (round == 0) {
      std::thread(poll).join();
    } else {
      poll();
    }
    ASSERT_TRUE(status.ok()) << status;
    ASSERT_EQ(ready.size(), 2u);
    EXPECT_TRUE(ready[0] == (PollEvent{p.a, kRead}) || ready[1] == (PollEvent{p.a, kRead}));
  }
}

TEST_F(IoUringPollerTest, ManyModifiesBetweenPollsEndInTheLastMask) {
  auto made = NewIoUringPoller();
  ASSERT_TRUE(made.ok()) << made.status();
  std::unique_ptr<Poller> poller = *std::move(made);
  std::vector<Pair> pairs(300);  // More than the submission queue holds at once.
  for (Pair& p : pairs) ASSERT_TRUE(poller->Register(p.a, kRead).ok());
  std::vector<PollEvent> ready;
  ASSERT_TRUE(poller->Poll(absl::ZeroDuration(), ready).ok());
  EXPECT_TRUE(ready.empty());
  for (int i = 0; i < 5; ++i) {
    for (Pair& p : pairs) ASSERT_TRUE(poller->Modify(p.a, i % 2 ? kRead : kWrite).ok());
  }
  ASSERT_TRUE(poller->Poll(absl::ZeroDuration(), ready).ok());
  EXPECT_EQ(ready.size(), pairs.size());
  for (const PollEvent& e : ready) EXPECT_EQ(e.events, kWrite) << "fd " << e.fd;
  for (Pair& p : pairs) ASSERT_TRUE(poller->Modify(p.a, kRead).ok());
  ready.clear();
  ASSERT_TRUE(poller->Poll(absl::ZeroDuration(), ready).ok());
  EXPECT_TRUE(ready.empty());
}

}  // namespace
}  // namespace ioloop
