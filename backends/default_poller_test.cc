#include "backends/default_poller.h"

#include <algorithm>

#include "gtest/gtest.h"

#if defined(IOLOOP_EXPECTED_POLLER_IO_URING)
#include <stdlib.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "backends/io_uring/testing/refuse_io_uring.h"
#endif

namespace ioloop {
namespace {

#if defined(IOLOOP_EXPECTED_POLLER_AUTO)
#if defined(__linux__)
#define IOLOOP_EXPECTED_POLLER "epoll"
#elif defined(__APPLE__) || defined(__FreeBSD__) || defined(__OpenBSD__)
#define IOLOOP_EXPECTED_POLLER "kqueue"
#else
#define IOLOOP_EXPECTED_POLLER "select"
#endif
#endif

#if defined(IOLOOP_EXPECTED_POLLER_IO_URING)
// io_uring where this kernel allows it, else the documented fallback.
#define IOLOOP_EXPECTED_POLLER (NewPoller("io_uring").ok() ? "io_uring" : "epoll")
#endif

TEST(DefaultPollerTest, FollowsTheBuildFlag) {
  std::unique_ptr<Poller> poller = NewDefaultPoller();
  ASSERT_NE(poller, nullptr);
  EXPECT_EQ(poller->Name(), IOLOOP_EXPECTED_POLLER);
  EXPECT_EQ(DefaultPollerName(), IOLOOP_EXPECTED_POLLER);
}

#if defined(IOLOOP_EXPECTED_POLLER_IO_URING)
// Where the kernel refuses io_uring, the io_uring build's NewDefaultPoller() and
// DefaultPollerName() are epoll, and the reason is logged once however often they are
// called. (Not a fixture test: the child process must probe the kernel only after its
// filter is in place.)
TEST(DefaultPollerTest, IoUringRefusedFallsBackToEpollWithOneLogLine) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        if (!RefuseIoUringSetupForTesting(ENOSYS)) std::_Exit(2);
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
#endif

TEST(NewPollerTest, CreatesEveryAvailableBackendByName) {
  for (absl::string_view name : AvailablePollers()) {
    auto poller = NewPoller(name);
    ASSERT_TRUE(poller.ok()) << poller.status();
    EXPECT_EQ((*poller)->Name(), name);
  }
  auto names = AvailablePollers();
  EXPECT_NE(std::find(names.begin(), names.end(), "poll"), names.end());
  EXPECT_NE(std::find(names.begin(), names.end(), "select"), names.end());
}

TEST(NewPollerTest, UnknownOrAbsentBackendIsNotFound) {
  EXPECT_EQ(NewPoller("bogus").status().code(), absl::StatusCode::kNotFound);
#if defined(__linux__)
  auto kqueue = NewPoller("kqueue");
  EXPECT_EQ(kqueue.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(kqueue.status().message().find("epoll"), absl::string_view::npos)
      << "the error lists what the build has: " << kqueue.status();
#endif
}

}  // namespace
}  // namespace ioloop
