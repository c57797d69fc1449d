// echo_server: the ioloop demo. Echoes every byte back.
//
//   ./bazelw run //examples:echo_server -- --port=8888 [--host=127.0.0.1]
//   ./bazelw run //examples:echo_server -- --port=8888 --loops=4 --mode=reuseport
//   nc 127.0.0.1 8888
//
// Binds loopback unless --host says otherwise; drops clients idle for --idle_timeout.
// --loops=0 (the default) serves on one loop on the main thread; --loops=N >= 1 runs N
// loop threads (a LoopThreadPool) with the connections spread across them by --mode:
// `handoff` (one acceptor, exact round-robin) or `reuseport` (a listening socket per
// loop, the kernel spreads); see docs/net.md, "More than one core".
// Ctrl-C (SIGINT) or SIGTERM stops it; with --loops it then prints each loop's share.

#include <signal.h>

#include <cstdio>
#include <string>

// Abseil's flag headers use std::atomic_thread_fence, which g++ flags under
// -fsanitize=thread (-Wtsan); the flags are parsed once, before any thread exists.
#if defined(__GNUC__) && !defined(__clang__) && defined(__SANITIZE_THREAD__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wtsan"
#endif
#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#if defined(__GNUC__) && !defined(__clang__) && defined(__SANITIZE_THREAD__)
#pragma GCC diagnostic pop
#endif
#include "absl/time/time.h"
#include "examples/echo_server.h"
#include "examples/multi_loop_echo_server.h"
#include "ioloop/io_loop.h"
#include "loop_thread/loop_thread.h"
#include "net/multi_loop_server.h"

ABSL_FLAG(std::string, host, "127.0.0.1", "address to listen on");
ABSL_FLAG(int, port, 8888, "port to listen on (0: any free port)");
ABSL_FLAG(absl::Duration, idle_timeout, absl::Seconds(60),
          "drop a client that sends nothing for this long");
ABSL_FLAG(int, max_buffered_bytes, 64 * 1024, "bytes in flight per connection");
ABSL_FLAG(int, loops, 0,
          "0: one loop on the main thread; N >= 1: N loop threads, connections spread "
          "across them by --mode");
ABSL_FLAG(std::string, mode, "handoff",
          "with --loops: handoff (one acceptor, exact round-robin) or reuseport (a "
          "listening socket per loop, SO_REUSEPORT)");

namespace {
ioloop::IOLoop* g_loop = nullptr;
void StopLoop() { g_loop->Stop(); }
void OnStopSignal(int) { g_loop->AddCallbackFromSignal(&StopLoop); }

// One loop on this thread: the original demo.
int RunOneLoop(const ioloop::examples::EchoServerOptions& options) {
  ioloop::IOLoop loop;
  g_loop = &loop;
  auto server = ioloop::examples::EchoServer::Listen(&loop, options);
  if (!server.ok()) {
    std::fprintf(stderr, "echo_server: %s\n", server.status().ToString().c_str());
    return 1;
  }
  struct sigaction action = {};
  action.sa_handler = &OnStopSignal;
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
  std::printf("echo_server listening on %s:%d (Ctrl-C stops it)\n", options.host.c_str(),
              (*server)->port());
  std::fflush(stdout);
  loop.Start();
  std::printf("echo_server: stopped after %llu connections, %llu bytes echoed, %llu dropped idle\n",
              static_cast<unsigned long long>((*server)->accepted()),
              static_cast<unsigned long long>((*server)->bytes_echoed()),
              static_cast<unsigned long long>((*server)->dropped_idle()));
  return 0;
}

// N loop threads. The main thread only waits for SIGINT/SIGTERM (blocked before the
// threads start, so only sigwait() here receives them), then shuts down in order:
// stop accepting, close every connection on its loop, stop and join the threads.
int RunLoopThreads(const ioloop::examples::EchoServerOptions& options, int loops,
                   ioloop::MultiLoopMode mode) {
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  ioloop::LoopThreadPool pool(loops, "echo");
  if (absl::Status s = pool.Start(); !s.ok()) {
    std::fprintf(stderr, "echo_server: %s\n", s.ToString().c_str());
    return 1;
  }
  auto server = ioloop::examples::MultiLoopEchoServer::Listen(&pool, options, mode);
  if (!server.ok()) {
    std::fprintf(stderr, "echo_server: %s\n", server.status().ToString().c_str());
    return 1;
  }
  std::printf("echo_server listening on %s:%d with %d loops, mode %s (Ctrl-C stops it)\n",
              options.host.c_str(), (*server)->port(), loops,
              std::string(ioloop::MultiLoopModeName(mode)).c_str());
  std::fflush(stdout);
  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  const std::vector<uint64_t> connections = (*server)->ConnectionsPerLoop();
  const std::vector<uint64_t> bytes = (*server)->BytesEchoedPerLoop();
  (*server)->Shutdown();
  pool.Stop();
  pool.Join();
  for (size_t i = 0; i < connections.size(); ++i) {
    std::printf("echo_server: loop %zu: %llu connections, %llu bytes echoed\n", i,
                static_cast<unsigned long long>(connections[i]),
                static_cast<unsigned long long>(bytes[i]));
  }
  return 0;
}
}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  ioloop::examples::EchoServerOptions options;
  options.host = absl::GetFlag(FLAGS_host);
  options.port = absl::GetFlag(FLAGS_port);
  options.idle_timeout = absl::GetFlag(FLAGS_idle_timeout);
  options.max_buffered_bytes = static_cast<size_t>(absl::GetFlag(FLAGS_max_buffered_bytes));
  const int loops = absl::GetFlag(FLAGS_loops);
  if (loops < 0) {
    std::fprintf(stderr, "echo_server: --loops must be 0 or more\n");
    return 1;
  }
  absl::StatusOr<ioloop::MultiLoopMode> mode =
      ioloop::ParseMultiLoopMode(absl::GetFlag(FLAGS_mode));
  if (!mode.ok()) {
    std::fprintf(stderr, "echo_server: --mode: %s\n", mode.status().ToString().c_str());
    return 1;
  }
  if (loops == 0) return RunOneLoop(options);
  return RunLoopThreads(options, loops, *mode);
}
