#include "testing/fake_poller.h"

#include <unistd.h>

#include <climits>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ioloop::testing {
namespace {

using ::testing::HasSubstr;

class FakePollerTest : public ::testing::Test {
 protected:
  FakePollerTest() { EXPECT_EQ(pipe(fds_), 0); }
  ~FakePollerTest() override {
    close(fds_[0]);
    close(fds_[1]);
  }
  int fds_[2];
  FakePoller poller_;
};

// The same argument errors as the real backends (backends/poller.h).
TEST_F(FakePollerTest, RefusesWhatTheRealBackendsRefuse) {
  EXPECT_EQ(poller_.Register(-1, kRead).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(poller_.Register(fds_[0], 0x100).code(), absl::StatusCode::kInvalidArgument);
  int closed[2];
  ASSERT_EQ(pipe(closed), 0);
  close(closed[0]);
  close(closed[1]);
  const absl::Status bad = poller_.Register(closed[0], kRead);
  EXPECT_FALSE(bad.ok());
  EXPECT_THAT(bad.message(), HasSubstr("fd " + std::to_string(closed[0])));
  EXPECT_THAT(bad.message(), HasSubstr("Bad file descriptor"));
  ASSERT_TRUE(poller_.Register(fds_[0], kRead).ok());
  EXPECT_EQ(poller_.Register(fds_[0], kRead).code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(poller_.Modify(fds_[0], 0x100).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(poller_.Modify(fds_[1], kRead).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(poller_.Unregister(fds_[1]).code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(poller_.Unregister(fds_[0]).ok());
}

TEST_F(FakePollerTest, DeliversInjectedEventsLimitedToTheRegistration) {
  ASSERT_TRUE(poller_.Register(fds_[0], kRead).ok());
  poller_.Inject(fds_[0], kRead | kWrite | kError);
  poller_.Inject(fds_[1], kRead);  // Not registered: dropped.
  std::vector<PollEvent> ready;
  ASSERT_TRUE(poller_.Poll(absl::ZeroDuration(), ready).ok());
  ASSERT_EQ(ready.size(), 1u);
  EXPECT_EQ(ready[0].fd, fds_[0]);
  EXPECT_EQ(ready[0].events, kRead | kError);
}

TEST(FakePollerAnyNumberTest, TakesNumbersNoProcessCouldOpen) {
  FakePoller poller(nullptr, FakePoller::FdCheck::kAnyNumber);
  EXPECT_TRUE(poller.Register(INT_MAX, kRead).ok());
  EXPECT_EQ(poller.Register(-1, kRead).code(), absl::StatusCode::kInvalidArgument);
}

TEST(FakePollerClockTest, AnIdlePollAdvancesTheClockByItsTimeout) {
  FakeClock clock;
  const absl::Time start = clock.Now();
  FakePoller poller(&clock);
  std::vector<PollEvent> ready;
  ASSERT_TRUE(poller.Poll(absl::Seconds(7), ready).ok());
  EXPECT_EQ(clock.Now() - start, absl::Seconds(7));
  EXPECT_TRUE(ready.empty());
}

}  // namespace
}  // namespace ioloop::testing
