// coro_echo_server: the echo server as coroutines (examples/coro_echo_server.h).
//
//   ./bazelw run //examples:coro_echo_server -- --port=8888 [--host=127.0.0.1]
//   nc 127.0.0.1 8888
//
// Binds loopback unless --host says otherwise; drops clients idle for --idle_timeout.
// Ctrl-C (SIGINT) or SIGTERM stops it.

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
#include "examples/coro_echo_server.h"
#include "ioloop/io_loop.h"

ABSL_FLAG(std::string, host, "127.0.0.1", "address to listen on");
ABSL_FLAG(int, port, 8888, "port to listen on (0: any free port)");
ABSL_FLAG(absl::Duration, idle_timeout, absl::Seconds(60),
          "drop a client that sends nothing for this long");
ABSL_FLAG(int, max_buffered_bytes, 64 * 1024, "bytes in flight per connection");

namespace {
ioloop::IOLoop* g_loop = nullptr;
void StopLoop() { g_loop->Stop(); }
void OnStopSignal(int) { g_loop->AddCallbackFromSignal(&StopLoop); }
}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  ioloop::examples::EchoServerOptions options;
  options.host = absl::GetFlag(FLAGS_host);
  options.port = absl::GetFlag(FLAGS_port);
  options.idle_timeout = absl::GetFlag(FLAGS_idle_timeout);
  options.max_buffered_bytes = static_cast<size_t>(absl::GetFlag(FLAGS_max_buffered_bytes));

  ioloop::IOLoop loop;
  g_loop = &loop;
  auto server = ioloop::examples::CoroEchoServer::Listen(&loop, options);
  if (!server.ok()) {
    std::fprintf(stderr, "coro_echo_server: %s\n", server.status().ToString().c_str());
    return 1;
  }
  struct sigaction action = {};
  action.sa_handler = &OnStopSignal;
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
  std::printf("coro_echo_server listening on %s:%d (Ctrl-C stops it)\n", options.host.c_str(),
              (*server)->port());
  std::fflush(stdout);
  loop.Start();
  const auto& stats = (*server)->stats();
  std::printf(
      "coro_echo_server: stopped after %llu connections, %llu bytes echoed, %llu dropped "
      "idle\n",
      static_cast<unsigned long long>(stats.accepted),
      static_cast<unsigned long long>(stats.bytes_echoed),
      static_cast<unsigned long long>(stats.dropped_idle));
  server->reset();
  return 0;
}
