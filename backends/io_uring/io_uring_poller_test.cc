// What only the io_uring backend has: refusal by the kernel and the build-flag
// fallback to epoll, a poller moving between threads, and many Modify() calls batched
// into one submission. The shared behaviour is in backends/poller_conformance_test.cc.

#include "backends/io_uring/io_uring_poller.h"

#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "backends/default_poller.h"
#include "gtest/gtest.h"

namespace ioloop {
namespace {

// RefuseIoUringSetup() makes io_uring_setup() fail with `error` on the calling thread
// (and threads it starts), as a container's seccomp profile does.
bool RefuseIoUringSetup(int error) {
  sock_filter filter[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
      BPF_STMT(BPF_RET | BPF_K,
               SECCOMP_RET_ERRNO | (static_cast<unsigned>(error) & SECCOMP_RET_DATA)),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  sock_fprog program = {static_cast<unsigned short>(sizeof filter / sizeof filter[0]), filter};
  return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
         prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program) == 0;
}

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
      filtered = RefuseIoUringSetup(error);
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

// The build-flag default (this test links io_uring's as_default shim): where the
// kernel refuses, NewDefaultPoller() and DefaultPollerName() are epoll, and the reason
// is logged once however often they are called. (Not a fixture test: the child
// process must probe the kernel only after its filter is in place.)
TEST(IoUringDefaultTest, FallsBackToEpollWithOneLogLine) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        if (!RefuseIoUringSetup(ENOSYS)) std::_Exit(2);
        std::fflush(stderr);
        const int saved = dup(2);
        char path[] = "/tmp/io_uring_fallback_XXXXXX";
        const int log = mkstemp(path);
        dup2(log, 2);
        bool ok = DefaultPollerName() == "epoll";
        for (int i = 0; i < 3; ++i) ok = ok && NewDefaultPoller()->Name() == "epoll";
        std::fflush(stderr);
        dup2(saved, 2);
        std::string text(4096, '\0');
        text.resize(pread(log, text.data(), text.size(), 0) > 0 ? strlen(text.c_str()) : 0);
        unlink(path);
        std::fputs(text.c_str(), stderr);
        int lines = 0;
        for (char c : text) lines += c == '\n';
        std::_Exit(ok && lines == 1 ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "io_uring unavailable .*io_uring_setup.*falling back to epoll");
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
