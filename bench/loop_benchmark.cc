// Wall-time benchmarks: every workload of bench/workloads.h against ioloop, libevent,
// libuv and raw. Run through bench/compare.sh for interleaved, repeated, fresh-process
// figures; alone for a quick look:
//
//   ./bazelw run --config=opt //bench:loop_benchmark -- --benchmark_filter=W1

#include <benchmark/benchmark.h>

#include "backends/default_poller.h"
#include "bench/adapters/ioloop_adapter.h"
#include "bench/adapters/libevent_adapter.h"
#include "bench/adapters/libuv_adapter.h"
#include "bench/adapters/raw_adapter.h"
#include "bench/iostream_echo.h"
#include "bench/workloads.h"

namespace ioloop::bench {
namespace {

constexpr int kActiveTokens = 100;
constexpr int kEventsPerIteration = 100000;
// 10,000 socketpairs would need 20,000 fds plus the loops' own; this machine's
// RLIMIT_NOFILE hard limit is 20,000 and cannot be raised, so the largest chain is
// 9,900 pairs.
constexpr int kLargestChain = 9900;

template <class Loop>
void W1_PipeChainDispatch(benchmark::State& state) {
  Loop loop;
  PipeChain<Loop> chain(loop, static_cast<int>(state.range(0)), kActiveTokens);
  chain.WatchAll();
  chain.Seed();
  uint64_t events = 0;
  for (auto _ : state) events += chain.Run(kEventsPerIteration);
  if (chain.DrainTokens() != kActiveTokens) Fail("W1: tokens lost");
  state.counters["ns_per_event"] = benchmark::Counter(
      static_cast<double>(events), benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  state.SetItemsProcessed(static_cast<int64_t>(events));
}

template <class Loop>
void W1_PipeChainSetup(benchmark::State& state) {
  Loop loop;
  PipeChain<Loop> chain(loop, static_cast<int>(state.range(0)), 1);
  for (auto _ : state) {
    chain.WatchAll();
    loop.PollOnce();  // Libraries that batch registrations apply them here.
    state.PauseTiming();
    chain.UnwatchAll();
    loop.PollOnce();
    state.ResumeTiming();
  }
  state.counters["ns_per_fd"] =
      benchmark::Counter(static_cast<double>(state.iterations() * state.range(0)),
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

template <class Loop>
void W2_Timers(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  const bool already_due = state.range(1) == 0;
  Loop loop;
  TimerStorm<Loop> storm(loop, n, n);
  uint64_t seed = 1;
  for (auto _ : state) storm.ScheduleAndFire(already_due, seed++);
  state.counters["ns_per_timer"] =
      benchmark::Counter(static_cast<double>(state.iterations() * n),
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

template <class Loop>
void W3_CancelChurn(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  Loop loop;
  TimerStorm<Loop> storm(loop, n, 1);
  for (auto _ : state) storm.AddRemoveChurn();
  state.counters["ns_per_op"] =
      benchmark::Counter(static_cast<double>(state.iterations() * n),
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  state.counters["peak_rss_kb"] = static_cast<double>(PeakRssKb());
}

template <class Loop>
void W4_CrossThread(benchmark::State& state) {
  const int per_thread = static_cast<int>(state.range(0));
  Loop loop;
  int64_t wakeups_before = loop.WakeupsSent();
  for (auto _ : state) CrossThread<Loop>::Run(loop, per_thread);
  const double callbacks =
      static_cast<double>(state.iterations()) * CrossThread<Loop>::kThreads * per_thread;
  state.counters["ns_per_callback"] =
      benchmark::Counter(callbacks, benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  if (wakeups_before >= 0) {
    state.counters["wakeups_per_1k_callbacks"] =
        static_cast<double>(loop.WakeupsSent() - wakeups_before) * 1000.0 / callbacks;
  }
}

// The W5 echo measurement shared by every server: per iteration, `with_server(serve)`
// builds one echo server (with a port(), ServeUntilAllClosed() and messages()) and
// calls serve(server) on it, returning true; or it reports a skip on `state` and
// returns false, which ends the benchmark without counters.
template <class WithServer>
void RunW5TcpEcho(benchmark::State& state, WithServer with_server) {
  constexpr int kConnections = 50;
  const auto duration = std::chrono::milliseconds(state.range(0));
  uint64_t round_trips = 0;
  int64_t server_cpu_ns = 0;
  for (auto _ : state) {
    const bool served = with_server([&](auto& server) {
      uint64_t client_round_trips = 0;
      std::thread client(
          [&] { client_round_trips = EchoClient(server.port(), kConnections, duration); });
      const int64_t cpu0 = ThreadCpuNanos();
      server.ServeUntilAllClosed(kConnections);
      server_cpu_ns += ThreadCpuNanos() - cpu0;
      client.join();
      if (server.messages() < client_round_trips)
        Fail("W5: the server echoed fewer messages than the client got");
      round_trips += client_round_trips;
    });
    if (!served) return;
  }
  state.counters["round_trips_per_s"] =
      benchmark::Counter(static_cast<double>(round_trips), benchmark::Counter::kIsRate);
  state.counters["server_cpu_ns_per_rt"] =
      static_cast<double>(server_cpu_ns) / static_cast<double>(round_trips);
}

template <class Loop>
void W5_TcpEcho(benchmark::State& state) {
  RunW5TcpEcho(state, [](auto serve) {
    Loop loop;
    EchoServerWorkload<Loop> server(loop);
    serve(server);
    return true;
  });
}

// W5 with the server on TCPServer + IOStream (bench/iostream_echo.h), on the build's
// default poller or (kIoUring) on io_uring, skipped where the kernel refuses it.
template <IOStreamEchoServer::Style kStyle, bool kIoUring = false>
void W5_TcpEchoIOStream(benchmark::State& state) {
  RunW5TcpEcho(state, [&state](auto serve) {
    IOLoop::Options options;
    if (kIoUring) {
      absl::StatusOr<std::unique_ptr<Poller>> poller = NewPoller("io_uring");
      if (!poller.ok()) {
        state.SkipWithError(poller.status().ToString().c_str());
        return false;
      }
      options.poller = *std::move(poller);
    }
    IOStreamEchoServer server(kStyle, std::move(options));
    serve(server);
    return true;
  });
}

// W5Settings: every W5 server runs one real-time iteration of 1,000 ms of clients.
void W5Settings(benchmark::internal::Benchmark* b) {
  b->Arg(1000)->Unit(benchmark::kMillisecond)->Iterations(1)->UseRealTime();
}

BENCHMARK_TEMPLATE(W5_TcpEchoIOStream, IOStreamEchoServer::Style::kStreaming)
    ->Name("W5_TcpEcho/iostream")
    ->Apply(W5Settings);
BENCHMARK_TEMPLATE(W5_TcpEchoIOStream, IOStreamEchoServer::Style::kStrings)
    ->Name("W5_TcpEcho/iostream_strings")
    ->Apply(W5Settings);
BENCHMARK_TEMPLATE(W5_TcpEchoIOStream, IOStreamEchoServer::Style::kStreaming, true)
    ->Name("W5_TcpEcho/iostream_uring")
    ->Apply(W5Settings);

#define IOLOOP_FOR_EACH_IMPL(BENCH, ...)                                                   \
  BENCHMARK_TEMPLATE(BENCH, IOLoopAdapter)->Name(#BENCH "/ioloop") __VA_ARGS__;            \
  BENCHMARK_TEMPLATE(BENCH, IOLoopUringAdapter)->Name(#BENCH "/ioloop_uring") __VA_ARGS__; \
  BENCHMARK_TEMPLATE(BENCH, RawAdapter)->Name(#BENCH "/raw") __VA_ARGS__;                  \
  BENCHMARK_TEMPLATE(BENCH, LibeventAdapter)->Name(#BENCH "/libevent") __VA_ARGS__;        \
  BENCHMARK_TEMPLATE(BENCH, LibuvAdapter)->Name(#BENCH "/libuv") __VA_ARGS__

IOLOOP_FOR_EACH_IMPL(
    W1_PipeChainDispatch, ->Arg(100)->Arg(1000)->Arg(kLargestChain)->Unit(benchmark::kMillisecond));
IOLOOP_FOR_EACH_IMPL(
    W1_PipeChainSetup, ->Arg(1000)->Arg(kLargestChain)->Unit(benchmark::kMillisecond));
IOLOOP_FOR_EACH_IMPL(W2_Timers, ->Args({1000000, 0})
                                    ->Args({1000000, 1})
                                    ->Unit(benchmark::kMillisecond)
                                    ->Iterations(3));
IOLOOP_FOR_EACH_IMPL(W3_CancelChurn, ->Arg(1000000)->Unit(benchmark::kMillisecond)->Iterations(3));
IOLOOP_FOR_EACH_IMPL(W4_CrossThread, ->Arg(500000)->Unit(benchmark::kMillisecond)->Iterations(3));
IOLOOP_FOR_EACH_IMPL(W5_TcpEcho, ->Apply(W5Settings));

}  // namespace
}  // namespace ioloop::bench

BENCHMARK_MAIN();
