#include "backends/default_poller.h"

#include <algorithm>

#include "gtest/gtest.h"

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
