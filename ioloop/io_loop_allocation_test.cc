// The loop's steady state allocates nothing: AddTimeout, RemoveTimeout, a timeout
// firing, AddCallback and handler dispatch, with captures of up to 48 bytes, once
// the loop's containers and free lists are warm. Counted with a replaced operator
// new (//base:allocation_counter), on the real loop (default poller, real clock) and a pipe.

#include <unistd.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <new>

#include "base/allocation_counter.h"
#include "gtest/gtest.h"
#include "ioloop/io_loop.h"
#include "testing/fd_pairs.h"

namespace ioloop {
namespace {

// A capture of exactly 48 bytes: the largest the loop keeps without allocating.
struct Payload {
  std::array<int64_t, 5> words{};
  int* counter = nullptr;
};
static_assert(sizeof(Payload) == 48);

// Runs `round` on the loop `rounds` times from a callback, after a warm-up, and
// returns the allocations made during the measured rounds.
template <typename Round>
uint64_t AllocationsDuring(IOLoop& loop, int rounds, Round round) {
  uint64_t allocations = 0;
  loop.AddCallback([&] {
    for (int i = 0; i < 100; ++i) round();  // Warm: vectors sized, free lists filled.
    const uint64_t before = base::AllocationsOnThisThread();
    for (int i = 0; i < rounds; ++i) round();
    allocations = base::AllocationsOnThisThread() - before;
    loop.Stop();
  });
  loop.Start();
  return allocations;
}

TEST(IOLoopAllocationTest, AddAndRemoveTimeoutWith48ByteCaptures) {
  IOLoop loop;
  int fired = 0;
  Payload payload{{}, &fired};
  const uint64_t allocations = AllocationsDuring(loop, 10000, [&] {
    TimeoutHandle h = loop.AddTimeout(absl::Seconds(60), [payload] { ++*payload.counter; });
    loop.RemoveTimeout(h);
  });
  EXPECT_EQ(allocations, 0u);
  EXPECT_EQ(fired, 0);
}

TEST(IOLoopAllocationTest, TimeoutsThatFire) {
  IOLoop loop;
  int fired = 0;
  Payload payload{{}, &fired};
  auto round = [&] {
    loop.AddTimeout(absl::ZeroDuration(), [payload] { ++*payload.counter; });
    ASSERT_TRUE(loop.RunOnce(absl::ZeroDuration()));
  };
  for (int i = 0; i < 100; ++i) round();
  const uint64_t before = base::AllocationsOnThisThread();
  for (int i = 0; i < 1000; ++i) round();
  EXPECT_EQ(base::AllocationsOnThisThread() - before, 0u);
  EXPECT_EQ(fired, 1100);
}

TEST(IOLoopAllocationTest, CallbacksWith48ByteCaptures) {
  IOLoop loop;
  int ran = 0;
  Payload payload{{}, &ran};
  auto round = [&] {
    for (int i = 0; i < 10; ++i) loop.AddCallback([payload] { ++*payload.counter; });
    ASSERT_TRUE(loop.RunOnce(absl::ZeroDuration()));
  };
  for (int i = 0; i < 100; ++i) round();
  const uint64_t before = base::AllocationsOnThisThread();
  for (int i = 0; i < 1000; ++i) round();
  EXPECT_EQ(base::AllocationsOnThisThread() - before, 0u);
  EXPECT_EQ(ran, 11000);
}

TEST(IOLoopAllocationTest, HandlerDispatch) {
  IOLoop loop;
  int fds[2];
  ASSERT_TRUE(testing::MakePipe(fds).ok());
  int reads = 0;
  Payload payload{{}, &reads};
  ASSERT_TRUE(loop.AddHandler(
                      fds[0],
                      [payload](int fd, EventMask) {
                        char c;
                        if (read(fd, &c, 1) == 1) ++*payload.counter;
                      },
                      kRead)
                  .ok());
  auto round = [&] {
    ASSERT_EQ(write(fds[1], "x", 1), 1);
    ASSERT_TRUE(loop.RunOnce(absl::Seconds(10)));
  };
  for (int i = 0; i < 100; ++i) round();
  const uint64_t before = base::AllocationsOnThisThread();
  for (int i = 0; i < 1000; ++i) round();
  EXPECT_EQ(base::AllocationsOnThisThread() - before, 0u);
  EXPECT_EQ(reads, 1100);
  ASSERT_TRUE(loop.RemoveHandler(fds[0]).ok());
  close(fds[0]);
  close(fds[1]);
}

}  // namespace
}  // namespace ioloop
