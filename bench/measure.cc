// measure: runs one workload once against one implementation, in a fresh process,
// with callgrind's instrumentation switched on only around the measured part. It is
// what bench/compare.sh runs under `valgrind --tool=callgrind` (instructions) and
// `strace -c -f` (system calls).
//
//   measure --impl=ioloop|ioloop_uring|raw|libevent|libuv
//   --workload=w1|w2a|w2b|w3|w4|w5server|w5client
//           [--n=...] [--ops=...] [--port=...] [--ms=...]
//   measure --impl=iostream|iostream_strings|iostream_coro|iostream_uring
//           --workload=w5server [--n=CONNECTIONS] [--poller=NAME]
//
// Prints one line of key=value pairs, including ops=<operations measured> and, for
// w5server, allocations=<operator new calls in the measured part>.
//
// The iostream servers run on the build's default poller, or on --poller=NAME
// (NewPoller(); `iostream_uring` is `iostream --poller=io_uring`). Exit status 3 when
// that poller is refused (io_uring on a kernel that does not offer it). They also print
// rss_before_kb (VmRSS once listening, before any client) and peak_rss_kb (VmHWM after
// serving), so (peak - before) / connections is the memory each connection cost.

#include <valgrind/callgrind.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>

#include "backends/default_poller.h"
#include "base/allocation_counter.h"
#include "base/process_stats.h"
#include "bench/adapters/ioloop_adapter.h"
#include "bench/adapters/libevent_adapter.h"
#include "bench/adapters/libuv_adapter.h"
#include "bench/adapters/raw_adapter.h"
#include "bench/iostream_echo.h"
#include "bench/workloads.h"

namespace ioloop::bench {
namespace {

struct Args {
  std::string impl = "ioloop";
  std::string workload = "w1";
  long n = 1000;
  long ops = 20000;
  int port = 0;
  long ms = 1000;
  std::string poller;  // Empty: the build's default.
};

// StatusKb(key): a "VmRSS:"-style line of /proc/self/status, in KiB (-1 if absent).
// VmRSS is the resident set now; VmHWM its peak, exact (getrusage's ru_maxrss lags
// behind the kernel's batched RSS counters, so it can read below an earlier VmRSS).
long StatusKb(const char* key) {
  std::ifstream status("/proc/self/status");
  std::string word;
  while (status >> word) {
    long value;
    if (word == key && status >> value) return value;
    status.ignore(1 << 10, '\n');
  }
  return -1;
}
long VmRssKb() { return StatusKb("VmRSS:"); }
long VmHwmKb() { return StatusKb("VmHWM:"); }

// What one w5server run measured on the serving thread.
struct W5Figures {
  long rss_before_kb;
  int64_t server_cpu_ns;
  int64_t server_kernel_ns;  // The part of server_cpu_ns spent in the kernel.
  uint64_t allocations;
};

// ServeW5() prints the server's port for the client process (compare.sh reads it),
// then serves `connections` connections until all close, measuring only the serving.
template <class Server>
W5Figures ServeW5(Server& server, long connections) {
  W5Figures figures;
  figures.rss_before_kb = VmRssKb();
  std::printf("port=%d\n", server.port());
  std::fflush(stdout);
  const uint64_t allocations0 = base::AllocationsInProcess();
  CALLGRIND_START_INSTRUMENTATION;
  const int64_t cpu0 = ThreadCpuNanos();
  const int64_t kernel0 = base::ThreadKernelCpuNanos();
  server.ServeUntilAllClosed(static_cast<int>(connections));
  figures.server_cpu_ns = ThreadCpuNanos() - cpu0;
  figures.server_kernel_ns = base::ThreadKernelCpuNanos() - kernel0;
  CALLGRIND_STOP_INSTRUMENTATION;
  figures.allocations = base::AllocationsInProcess() - allocations0;
  return figures;
}

template <class Loop>
int RunWorkload(const Args& a) {
  if (a.workload == "w1") {
    Loop loop;
    PipeChain<Loop> chain(loop, static_cast<int>(a.n), 100);
    chain.WatchAll();
    chain.Seed();
    chain.Run(1000);  // Warm up outside the measured part.
    CALLGRIND_START_INSTRUMENTATION;
    const uint64_t events = chain.Run(static_cast<uint64_t>(a.ops));
    CALLGRIND_STOP_INSTRUMENTATION;
    if (chain.DrainTokens() != 100) Fail("W1: tokens lost");
    std::printf("impl=%s workload=w1 n=%ld ops=%llu\n", Loop::kName, a.n,
                static_cast<unsigned long long>(events));
  } else if (a.workload == "w4") {
    Loop loop;
    const int per_thread = static_cast<int>(a.ops / CrossThread<Loop>::kThreads);
    const int64_t wakeups_before = loop.WakeupsSent();
    CALLGRIND_START_INSTRUMENTATION;
    CrossThread<Loop>::Run(loop, per_thread);
    CALLGRIND_STOP_INSTRUMENTATION;
    const int64_t wakeups = loop.WakeupsSent() < 0 ? -1 : loop.WakeupsSent() - wakeups_before;
    std::printf("impl=%s workload=w4 ops=%d wakeups=%lld\n", Loop::kName,
                per_thread * CrossThread<Loop>::kThreads, static_cast<long long>(wakeups));
  } else if (a.workload == "w2a" || a.workload == "w2b" || a.workload == "w3") {
    Loop loop;
    TimerStorm<Loop> storm(loop, static_cast<size_t>(a.ops),
                           a.workload == "w3" ? 1 : static_cast<size_t>(a.ops));
    CALLGRIND_START_INSTRUMENTATION;
    if (a.workload == "w3") {
      storm.AddRemoveChurn();
    } else {
      storm.ScheduleAndFire(a.workload == "w2a", 1);
    }
    CALLGRIND_STOP_INSTRUMENTATION;
    std::printf("impl=%s workload=%s ops=%ld peak_rss_kb=%ld\n", Loop::kName, a.workload.c_str(),
                a.ops, PeakRssKb());
  } else if (a.workload == "w5server") {
    Loop loop;
    EchoServerWorkload<Loop> server(loop);
    const W5Figures figures = ServeW5(server, a.n);
    std::printf(
        "impl=%s workload=w5server connections=%ld ops=%llu server_cpu_ns=%lld "
        "server_kernel_ns=%lld allocations=%llu rss_before_kb=%ld peak_rss_kb=%ld\n",
        Loop::kName, a.n, static_cast<unsigned long long>(server.messages()),
        static_cast<long long>(figures.server_cpu_ns),
        static_cast<long long>(figures.server_kernel_ns),
        static_cast<unsigned long long>(figures.allocations), figures.rss_before_kb, VmHwmKb());
  } else {
    std::fprintf(stderr, "measure: unknown workload %s\n", a.workload.c_str());
    return 2;
  }
  return 0;
}

int Main(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const char* arg = argv[i];
    auto value = [&](const char* name) -> const char* {
      const size_t n = std::strlen(name);
      return std::strncmp(arg, name, n) == 0 && arg[n] == '=' ? arg + n + 1 : nullptr;
    };
    if (const char* v = value("--impl"))
      a.impl = v;
    else if (const char* v = value("--workload"))
      a.workload = v;
    else if (const char* v = value("--n"))
      a.n = std::atol(v);
    else if (const char* v = value("--ops"))
      a.ops = std::atol(v);
    else if (const char* v = value("--port"))
      a.port = std::atoi(v);
    else if (const char* v = value("--ms"))
      a.ms = std::atol(v);
    else if (const char* v = value("--poller"))
      a.poller = v;
    else {
      std::fprintf(stderr, "measure: unknown argument %s\n", arg);
      return 2;
    }
  }
  if (a.workload == "w5client") {
    const uint64_t rt = EchoClient(a.port, static_cast<int>(a.n), std::chrono::milliseconds(a.ms));
    std::printf("workload=w5client round_trips=%llu\n", static_cast<unsigned long long>(rt));
    return 0;
  }
  if (a.impl == "iostream_uring") {
    a.impl = "iostream";
    a.poller = "io_uring";
  }
  if (a.impl == "iostream" || a.impl == "iostream_strings" || a.impl == "iostream_coro") {
    if (a.workload != "w5server") {
      std::fprintf(stderr, "measure: %s runs only w5server\n", a.impl.c_str());
      return 2;
    }
    IOLoop::Options loop_options;
    if (!a.poller.empty()) {
      absl::StatusOr<std::unique_ptr<Poller>> poller = NewPoller(a.poller);
      if (!poller.ok()) {
        std::fprintf(stderr, "measure: %s\n", poller.status().ToString().c_str());
        return 3;
      }
      loop_options.poller = *std::move(poller);
    }
    IOStreamEchoServer server(a.impl == "iostream" ? IOStreamEchoServer::Style::kStreaming
                              : a.impl == "iostream_strings"
                                  ? IOStreamEchoServer::Style::kStrings
                                  : IOStreamEchoServer::Style::kCoroutine,
                              std::move(loop_options));
    const W5Figures figures = ServeW5(server, a.n);
    std::printf(
        "impl=%s poller=%s workload=w5server connections=%ld ops=%llu server_cpu_ns=%lld "
        "server_kernel_ns=%lld allocations=%llu bytes_copied=%llu bytes_echoed=%llu "
        "rss_before_kb=%ld "
        "peak_rss_kb=%ld\n",
        a.impl.c_str(), a.poller.empty() ? "default" : a.poller.c_str(), a.n,
        static_cast<unsigned long long>(server.messages()),
        static_cast<long long>(figures.server_cpu_ns),
        static_cast<long long>(figures.server_kernel_ns),
        static_cast<unsigned long long>(figures.allocations),
        static_cast<unsigned long long>(server.bytes_copied()),
        static_cast<unsigned long long>(server.bytes_echoed()), figures.rss_before_kb, VmHwmKb());
    return 0;
  }
  if (a.impl == "ioloop") return RunWorkload<IOLoopAdapter>(a);
  if (a.impl == "ioloop_uring") return RunWorkload<IOLoopUringAdapter>(a);
  if (a.impl == "raw") return RunWorkload<RawAdapter>(a);
  if (a.impl == "libevent") return RunWorkload<LibeventAdapter>(a);
  if (a.impl == "libuv") return RunWorkload<LibuvAdapter>(a);
  std::fprintf(stderr, "measure: unknown impl %s\n", a.impl.c_str());
  return 2;
}

}  // namespace
}  // namespace ioloop::bench

int main(int argc, char** argv) { return ioloop::bench::Main(argc, argv); }
