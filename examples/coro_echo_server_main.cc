// coro_echo_server: the echo server as coroutines (examples/coro_echo_server.h).
//
//   ./bazelw run //examples:coro_echo_server -- --port=8888 [--host=127.0.0.1]
//   nc 127.0.0.1 8888
//
// Binds loopback unless --host says otherwise; drops clients idle for --idle_timeout.
// Ctrl-C (SIGINT) or SIGTERM stops it.

#include <cstdio>

#include "examples/coro_echo_server.h"
#include "examples/internal/echo_flags.h"
#include "examples/internal/server_main.h"
#include "ioloop/io_loop.h"

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const ioloop::examples::EchoServerOptions options =
      ioloop::examples::EchoServerOptionsFromFlags();

  ioloop::IOLoop loop;
  auto server = ioloop::examples::CoroEchoServer::Listen(&loop, options);
  if (!server.ok()) return ioloop::examples::ReportError("coro_echo_server", server.status());
  ioloop::examples::ServeUntilStopSignal(loop, "coro_echo_server", options.host, (*server)->port());
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
