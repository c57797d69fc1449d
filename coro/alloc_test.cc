// Counts heap allocations (every operator new in this binary) in the steady state of
// `co_await Sleep()` and of a coroutine echo (ReadUntil + Write) on loopback sockets.

#include <cstdlib>
#include <new>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "coro/coro.h"
#include "coro/stream.h"
#include "gtest/gtest.h"
#include "net/iostream.h"
#include "net/testing/net_test_loop.h"
#include "testing/fake_loop.h"

namespace {
thread_local uint64_t t_allocations = 0;
}  // namespace

void* operator new(size_t size) {
  ++t_allocations;
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void* operator new[](size_t size) { return operator new(size); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
void operator delete[](void* p, size_t) noexcept { std::free(p); }

namespace ioloop::coro {
namespace {

struct Counts {
  uint64_t allocations = 0;
  uint64_t fresh_frames = 0;
};

TEST(CoroAllocTest, TheCounterCounts) {
  const uint64_t before = t_allocations;
  auto* s = new std::string(100, 'x');
  delete s;
  EXPECT_GE(t_allocations - before, 2u);
}

TEST(CoroAllocTest, SleepAllocatesNothingInSteadyState) {
  testing::FakeLoop fake;
  auto sleeps = [](int n) -> Task<> {
    for (int i = 0; i < n; ++i) co_await Sleep(absl::Milliseconds(1));
  };
  auto body = [](Task<> (*sleeps)(int)) -> Task<Counts> {
    co_await sleeps(100);  // Warm up: frame caches, timer heap, loop vectors.
    const uint64_t a0 = t_allocations;
    const uint64_t f0 = ThreadFrameStats().fresh;
    co_await sleeps(1000);
    co_return Counts{t_allocations - a0, ThreadFrameStats().fresh - f0};
  };
  Counts c = RunSync(fake.loop(), body(+sleeps));
  EXPECT_EQ(c.fresh_frames, 0u);
  EXPECT_EQ(c.allocations, 0u);
}

TEST(CoroAllocTest, EchoRoundTripAllocatesNothingInSteadyState) {
  net_testing::NetTestLoop t("epoll");
  auto [server_fd, client_fd] = net_testing::TcpPair();
  IOStream server(t.loop(), server_fd);
  IOStream client(t.loop(), client_fd);
  auto echo = [](IOStream* s) -> Task<> {
    while (true) {
      absl::StatusOr<std::string> line = co_await ReadUntil(*s, "\n", 64);
      if (!line.ok() || !(co_await Write(*s, *line)).ok()) co_return;
    }
  };
  auto ping = [](IOStream* c, int n) -> Task<> {
    for (int i = 0; i < n; ++i) {
      (void)co_await Write(*c, "ping\n");  // Short: the line fits a std::string inline.
      absl::StatusOr<std::string> reply = co_await ReadUntil(*c, "\n", 64);
      EXPECT_TRUE(reply.ok());
    }
  };
  auto body = [](IOStream* c, Task<> (*ping)(IOStream*, int)) -> Task<Counts> {
    co_await ping(c, 100);
    const uint64_t a0 = t_allocations;
    const uint64_t f0 = ThreadFrameStats().fresh;
    co_await ping(c, 1000);
    co_return Counts{t_allocations - a0, ThreadFrameStats().fresh - f0};
  };
  Spawn(*t.loop(), echo(&server));
  Counts c = RunSync(*t.loop(), body(&client, +ping), absl::Seconds(20));
  EXPECT_EQ(c.fresh_frames, 0u);
  // IOStream's own per-read allocations, if any, are counted here too.
  EXPECT_EQ(c.allocations, 0u) << c.allocations / 1000.0 << " allocations per round trip";
}

}  // namespace
}  // namespace ioloop::coro
