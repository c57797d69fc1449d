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

#include "absl/strings/str_cat.h"
#include "examples/echo_server.h"
#include "examples/internal/echo_flags.h"
#include "examples/internal/server_main.h"
#include "examples/multi_loop_echo_server.h"
#include "ioloop/io_loop.h"
#include "loop_thread/loop_thread.h"
#include "net/multi_loop_server.h"

ABSL_FLAG(int, loops, 0,
          "0: one loop on the main thread; N >= 1: N loop threads, connections spread "
          "across them by --mode");
ABSL_FLAG(std::string, mode, "handoff",
          "with --loops: handoff (one acceptor, exact round-robin) or reuseport (a "
          "listening socket per loop, SO_REUSEPORT)");

namespace {
using ioloop::examples::ReportError;

// One loop on this thread: the original demo.
int RunOneLoop(const ioloop::examples::EchoServerOptions& options) {
  ioloop::IOLoop loop;
  auto server = ioloop::examples::EchoServer::Listen(&loop, options);
  if (!server.ok()) return ReportError("echo_server", server.status());
  ioloop::examples::ServeUntilStopSignal(loop, "echo_server", options.host, (*server)->port());
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
  if (absl::Status s = pool.Start(); !s.ok()) return ReportError("echo_server", s);
  auto server = ioloop::examples::MultiLoopEchoServer::Listen(&pool, options, mode);
  if (!server.ok()) return ReportError("echo_server", server.status());
  ioloop::examples::PrintListening(
      "echo_server", options.host, (*server)->port(),
      absl::StrCat(" with ", loops, " loops, mode ", ioloop::MultiLoopModeName(mode)));
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
  const ioloop::examples::EchoServerOptions options =
      ioloop::examples::EchoServerOptionsFromFlags();
  const int loops = absl::GetFlag(FLAGS_loops);
  if (loops < 0) {
    std::fprintf(stderr, "echo_server: --loops must be 0 or more\n");
    return 1;
  }
  absl::StatusOr<ioloop::MultiLoopMode> mode =
      ioloop::ParseMultiLoopMode(absl::GetFlag(FLAGS_mode));
  if (!mode.ok()) return ReportError("echo_server: --mode", mode.status());
  if (loops == 0) return RunOneLoop(options);
  return RunLoopThreads(options, loops, *mode);
}
