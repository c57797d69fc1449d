#include "ioloop/stack_context.h"

#include <stdexcept>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "ioloop/io_loop.h"
#include "testing/fake_loop.h"

namespace ioloop {
namespace {

std::string What(std::exception_ptr e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    return ex.what();
  }
  return "?";
}

class StackContextTest : public ::testing::Test {
 protected:
  void RunFor(absl::Duration d) {
    loop_->AddTimeout(d, [this] { loop_->Stop(); });
    loop_->Start();
  }
  int Fd(int label) { return fake_.Fd(label); }

  testing::FakeLoop fake_;
  testing::RecordingLoop* const loop_ = &fake_.loop();
  testing::FakePoller* const poller_ = &fake_.poller();
};

TEST_F(StackContextTest, ExceptionReachesTheContextActiveWhenScheduled) {
  std::vector<std::string> caught;
  {
    ExceptionStackContext context([&](std::exception_ptr e) {
      caught.push_back(What(e));
      return true;
    });
    loop_->AddCallback([] { throw std::runtime_error("from callback"); });
    loop_->AddTimeout(absl::Seconds(1), [] { throw std::runtime_error("from timeout"); });
    ASSERT_TRUE(
        loop_
            ->AddHandler(
                Fd(100), [](int, EventMask) { throw std::runtime_error("from handler"); }, kRead)
            .ok());
  }
  poller_->Inject(Fd(100), kRead);
  RunFor(absl::Seconds(2));
  EXPECT_EQ(caught, (std::vector<std::string>{"from callback", "from handler", "from timeout"}));
  EXPECT_TRUE(loop_->errors().empty());
}

TEST_F(StackContextTest, ContextsNestInnermostFirstAndFalsePassesOutwards) {
  std::vector<std::string> order;
  {
    ExceptionStackContext outer([&](std::exception_ptr) {
      order.push_back("outer");
      return true;
    });
    ExceptionStackContext inner([&](std::exception_ptr) {
      order.push_back("inner");
      return false;
    });
    loop_->AddCallback([] { throw std::runtime_error("x"); });
  }
  RunFor(absl::Seconds(1));
  EXPECT_EQ(order, (std::vector<std::string>{"inner", "outer"}));
  EXPECT_TRUE(loop_->errors().empty());
}

TEST_F(StackContextTest, UnhandledGoesToHandleCallbackException) {
  {
    ExceptionStackContext declines([](std::exception_ptr) { return false; });
    loop_->AddCallback([] { throw std::runtime_error("declined"); });
  }
  RunFor(absl::Seconds(1));
  EXPECT_EQ(loop_->errors(), (std::vector<std::string>{"declined"}));
}

TEST_F(StackContextTest, ContextFollowsCallbacksScheduledFromCallbacks) {
  int caught = 0;
  {
    ExceptionStackContext context([&](std::exception_ptr) {
      ++caught;
      return true;
    });
    loop_->AddCallback([this] {
      loop_->AddTimeout(absl::Seconds(1), [this] {
        loop_->AddCallback([] { throw std::runtime_error("two hops later"); });
      });
    });
  }
  RunFor(absl::Seconds(2));
  EXPECT_EQ(caught, 1);
}

TEST_F(StackContextTest, NullContextClearsContexts) {
  int caught = 0;
  {
    ExceptionStackContext context([&](std::exception_ptr) {
      ++caught;
      return true;
    });
    NullContext none;
    loop_->AddCallback([] { throw std::runtime_error("no context"); });
  }
  RunFor(absl::Seconds(1));
  EXPECT_EQ(caught, 0);
  EXPECT_EQ(loop_->errors().size(), 1u);
}

TEST_F(StackContextTest, WrapWithoutContextRunsWithNoneWhereverItRuns) {
  Callback wrapped = Wrap([] { throw std::runtime_error("wrapped bare"); });
  int caught = 0;
  {
    ExceptionStackContext context([&](std::exception_ptr) {
      ++caught;
      return true;
    });
    loop_->AddCallback(std::move(wrapped));
  }
  RunFor(absl::Seconds(1));
  EXPECT_EQ(caught, 0) << "the context active at AddCallback must not see it";
  EXPECT_EQ(loop_->errors(), (std::vector<std::string>{"wrapped bare"}));
}

TEST_F(StackContextTest, WrapCapturesTheContextActiveAtWrap) {
  int caught = 0;
  Callback wrapped;
  {
    ExceptionStackContext context([&](std::exception_ptr) {
      ++caught;
      return true;
    });
    wrapped = Wrap([] { throw std::runtime_error("x"); });
  }
  wrapped();  // Called directly, outside any loop: the captured handler still applies.
  EXPECT_EQ(caught, 1);
}

TEST_F(StackContextTest, HandlerThatThrowsPassesItsExceptionOutwards) {
  std::vector<std::string> seen;
  {
    ExceptionStackContext outer([&](std::exception_ptr e) {
      seen.push_back(What(e));
      return true;
    });
    ExceptionStackContext inner(
        [](std::exception_ptr) -> bool { throw std::runtime_error("rethrown"); });
    loop_->AddCallback([] { throw std::runtime_error("original"); });
  }
  RunFor(absl::Seconds(1));
  EXPECT_EQ(seen, (std::vector<std::string>{"rethrown"}));
}

TEST(StackContextScopeTest, ScopesRestoreThePreviousContext) {
  EXPECT_TRUE(StackContext::Capture().empty());
  {
    ExceptionStackContext a([](std::exception_ptr) { return true; });
    EXPECT_FALSE(StackContext::Capture().empty());
    {
      NullContext none;
      EXPECT_TRUE(StackContext::Capture().empty());
    }
    EXPECT_FALSE(StackContext::Capture().empty());
  }
  EXPECT_TRUE(StackContext::Capture().empty());
}

}  // namespace
}  // namespace ioloop
