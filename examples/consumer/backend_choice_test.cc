// Proves which backend --@ioloop//backends:poller gave this build.
#include "backends/default_poller.h"
#include "gtest/gtest.h"
#include "ioloop/io_loop.h"

TEST(BackendChoiceTest, DefaultPollerFollowsTheFlag) {
  EXPECT_EQ(ioloop::DefaultPollerName(), EXPECTED_POLLER);
  EXPECT_EQ(ioloop::NewDefaultPoller()->Name(), EXPECTED_POLLER);
  // And the loop runs on it.
  ioloop::IOLoop loop;
  bool ran = false;
  loop.AddCallback([&] {
    ran = true;
    loop.Stop();
  });
  loop.Start();
  EXPECT_TRUE(ran);
}
