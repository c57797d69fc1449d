// Small runs of every workload against every implementation: the benchmark code
// keeps building, and its self-checks keep passing, under `bazel test //...`.

#include "bench/workloads.h"

#include "backends/default_poller.h"
#include "bench/adapters/ioloop_adapter.h"
#include "bench/adapters/libevent_adapter.h"
#include "bench/adapters/libuv_adapter.h"
#include "bench/adapters/raw_adapter.h"
#include "bench/iostream_echo.h"
#include "gtest/gtest.h"

namespace ioloop::bench {
namespace {

template <class Loop>
class WorkloadsTest : public ::testing::Test {};

using Implementations = ::testing::Types<IOLoopAdapter, RawAdapter, LibeventAdapter, LibuvAdapter>;
TYPED_TEST_SUITE(WorkloadsTest, Implementations);

// Serves an EchoClient of `connections` connections, 100 ms long, on `server` until
// they all close, and expects round trips, every one of them echoed by the server.
template <class Server>
void ExpectEchoRoundTrips(Server& server, int connections) {
  uint64_t round_trips = 0;
  std::thread client([&] {
    round_trips = EchoClient(server.port(), connections, std::chrono::milliseconds(100));
  });
  server.ServeUntilAllClosed(connections);
  client.join();
  EXPECT_GT(round_trips, 0u);
  EXPECT_GE(server.messages(), round_trips);
}

TYPED_TEST(WorkloadsTest, PipeChainKeepsEveryToken) {
  TypeParam loop;
  PipeChain<TypeParam> chain(loop, 200, 20);
  chain.WatchAll();
  chain.Seed();
  EXPECT_GE(chain.Run(5000), 5000u);
  EXPECT_EQ(chain.DrainTokens(), 20);
}

TYPED_TEST(WorkloadsTest, PipeChainSetupAndTeardown) {
  TypeParam loop;
  PipeChain<TypeParam> chain(loop, 300, 1);
  for (int i = 0; i < 3; ++i) {
    chain.WatchAll();
    loop.PollOnce();
    chain.UnwatchAll();
    loop.PollOnce();
  }
  SUCCEED();  // A registration error would have aborted inside the adapter.
}

TYPED_TEST(WorkloadsTest, TimersFireExactlyOnce) {
  TypeParam loop;
  TimerStorm<TypeParam> storm(loop, 2000, 2000);
  storm.ScheduleAndFire(/*already_due=*/true, 1);
  storm.ScheduleAndFire(/*already_due=*/false, 2);  // Up to 50 ms of real waiting.
}

TYPED_TEST(WorkloadsTest, CancelChurnNeverFires) {
  TypeParam loop;
  TimerStorm<TypeParam> storm(loop, 20000, 1);
  storm.AddRemoveChurn();
}

TYPED_TEST(WorkloadsTest, CrossThreadCallbacksAllRun) {
  TypeParam loop;
  CrossThread<TypeParam>::Run(loop, 5000);
  if (loop.WakeupsSent() >= 0) {
    EXPECT_LE(loop.WakeupsSent(), 10000);
  }
}

TYPED_TEST(WorkloadsTest, TcpEchoRoundTrips) {
  TypeParam loop;
  EchoServerWorkload<TypeParam> server(loop);
  ExpectEchoRoundTrips(server, 10);
}

TEST(IOStreamEchoTest, BothStylesRoundTrip) {
  for (auto style : {IOStreamEchoServer::Style::kStreaming, IOStreamEchoServer::Style::kStrings}) {
    IOStreamEchoServer server(style);
    ExpectEchoRoundTrips(server, 10);
    if (style == IOStreamEchoServer::Style::kStreaming) {
      EXPECT_LE(server.bytes_copied(), server.bytes_echoed());
    }
  }
}

// The IOStream echo on an io_uring loop (compare.sh's `iostream_uring`), with as many
// connections as the backlog must hold for its 1,000-connection run, scaled down.
TEST(IOStreamEchoTest, RoundTripsOnIoUring) {
  absl::StatusOr<std::unique_ptr<Poller>> poller = NewPoller("io_uring");
  if (absl::IsUnavailable(poller.status())) GTEST_SKIP() << poller.status();
  ASSERT_TRUE(poller.ok()) << poller.status();
  IOLoop::Options options;
  options.poller = *std::move(poller);
  IOStreamEchoServer server(IOStreamEchoServer::Style::kStreaming, std::move(options));
  ExpectEchoRoundTrips(server, 200);
  EXPECT_LE(server.bytes_copied(), server.bytes_echoed());
}

}  // namespace
}  // namespace ioloop::bench
