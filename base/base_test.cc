#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <thread>

#include "base/check.h"
#include "base/eintr.h"
#include "base/errno_status.h"
#include "base/mutex.h"
#include "base/process_stats.h"
#include "gtest/gtest.h"

namespace ioloop {
namespace {

// Reading /dev/zero spends the thread's time in the kernel (zero-filling), so the
// kernel part grows and stays within the thread's CPU time (plus slack for the
// kernel's sampled split).
TEST(ProcessStatsTest, KernelCpuIsAPartOfTheThreadsCpu) {
  const int zero = open("/dev/zero", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(zero, 0);
  static char buffer[1 << 20];
  const int64_t cpu0 = base::ThreadCpuNanos();
  const int64_t kernel0 = base::ThreadKernelCpuNanos();
  ASSERT_GE(kernel0, 0) << "Linux keeps a per-thread split";
  while (base::ThreadCpuNanos() - cpu0 < 200'000'000) {
    ASSERT_EQ(read(zero, buffer, sizeof buffer), ssize_t{sizeof buffer});
  }
  const int64_t cpu = base::ThreadCpuNanos() - cpu0;
  const int64_t kernel = base::ThreadKernelCpuNanos() - kernel0;
  close(zero);
  EXPECT_GT(kernel, 0);
  EXPECT_LE(kernel, cpu + 20'000'000);
}

TEST(ErrnoStatusTest, NamesTheCallTheFdAndTheCause) {
  const absl::Status s = ErrnoStatus(EBADF, "epoll: epoll_ctl(ADD)", 7);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);  // ErrnoToStatus(EBADF).
  EXPECT_EQ(s.message(), "epoll: epoll_ctl(ADD) fd 7: Bad file descriptor");
}

TEST(ErrnoStatusTest, WithoutAnFd) {
  const absl::Status s = ErrnoStatus(EMFILE, "eventfd");
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(s.message(), "eventfd: Too many open files");
}

TEST(RetryOnEintrTest, RetriesOnlyEintr) {
  int calls = 0;
  const int result = RetryOnEintr([&] {
    ++calls;
    if (calls < 3) {
      errno = EINTR;
      return -1;
    }
    return 42;
  });
  EXPECT_EQ(result, 42);
  EXPECT_EQ(calls, 3);

  calls = 0;
  const int failed = RetryOnEintr([&] {
    ++calls;
    errno = EAGAIN;
    return -1;
  });
  EXPECT_EQ(failed, -1);
  EXPECT_EQ(errno, EAGAIN);
  EXPECT_EQ(calls, 1);
}

TEST(CheckTest, PassingCheckEvaluatesNoMessage) {
  int evaluated = 0;
  auto message = [&] {
    ++evaluated;
    return "never";
  };
  IOLOOP_CHECK(1 + 1 == 2, message());
  EXPECT_EQ(evaluated, 0);
}

TEST(CheckDeathTest, FailingCheckPrintsConditionAndMessage) {
  EXPECT_DEATH(IOLOOP_CHECK(1 + 1 == 3, "arithmetic is broken"),
               "check failed: 1 \\+ 1 == 3: arithmetic is broken");
}

#ifndef NDEBUG
TEST(CheckDeathTest, DcheckIsOnInDebugBuilds) {
  EXPECT_DEATH(IOLOOP_DCHECK(false, "debug only"), "debug only");
}
#else
TEST(CheckTest, DcheckEvaluatesNothingInOptimisedBuilds) {
  int evaluated = 0;
  IOLOOP_DCHECK(++evaluated == 0, "unused");
  EXPECT_EQ(evaluated, 0);
}
#endif

class Counter {
 public:
  void Add() {
    MutexLock lock(mu_);
    ++value_;
  }
  int value() {
    MutexLock lock(mu_);
    return value_;
  }

 private:
  Mutex mu_;
  int value_ ABSL_GUARDED_BY(mu_) = 0;
};

TEST(MutexTest, SerialisesWriters) {
  Counter counter;
  std::thread a([&] {
    for (int i = 0; i < 100000; ++i) counter.Add();
  });
  std::thread b([&] {
    for (int i = 0; i < 100000; ++i) counter.Add();
  });
  a.join();
  b.join();
  EXPECT_EQ(counter.value(), 200000);
}

}  // namespace
}  // namespace ioloop
