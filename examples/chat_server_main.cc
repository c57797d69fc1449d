// chat_server: a line-protocol chat room, written with callbacks (ChatServer) or, with
// --coroutines, as coroutines (CoroChatServer); the two behave the same.
//
//   ./bazelw run //examples:chat_server -- --port=8889 [--coroutines]
//   nc 127.0.0.1 8889        (in two terminals; /nick NAME, /quit)
//
// Binds loopback unless --host says otherwise. Ctrl-C (SIGINT) or SIGTERM stops it.

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
#include "examples/chat_server.h"
#include "examples/coro_chat_server.h"
#include "ioloop/io_loop.h"

ABSL_FLAG(std::string, host, "127.0.0.1", "address to listen on");
ABSL_FLAG(int, port, 8889, "port to listen on (0: any free port)");
ABSL_FLAG(int, max_line, 1024, "longest line a client may send");
ABSL_FLAG(int, max_queued_bytes, 256 * 1024, "unread bytes after which a client is dropped");
ABSL_FLAG(bool, coroutines, false, "serve with the coroutine version (coro/)");

namespace {
ioloop::IOLoop* g_loop = nullptr;
void StopLoop() { g_loop->Stop(); }
void OnStopSignal(int) { g_loop->AddCallbackFromSignal(&StopLoop); }

template <typename Server>
int Serve(const ioloop::examples::ChatServerOptions& options) {
  ioloop::IOLoop loop;
  g_loop = &loop;
  auto server = Server::Listen(&loop, options);
  if (!server.ok()) {
    std::fprintf(stderr, "chat_server: %s\n", server.status().ToString().c_str());
    return 1;
  }
  struct sigaction action = {};
  action.sa_handler = &OnStopSignal;
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
  std::printf("chat_server listening on %s:%d (Ctrl-C stops it)\n", options.host.c_str(),
              (*server)->port());
  std::fflush(stdout);
  loop.Start();
  std::printf("chat_server: stopped after %llu messages\n",
              static_cast<unsigned long long>((*server)->messages()));
  return 0;
}
}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  ioloop::examples::ChatServerOptions options;
  options.host = absl::GetFlag(FLAGS_host);
  options.port = absl::GetFlag(FLAGS_port);
  options.max_line = static_cast<size_t>(absl::GetFlag(FLAGS_max_line));
  options.max_queued_bytes = static_cast<size_t>(absl::GetFlag(FLAGS_max_queued_bytes));

  return absl::GetFlag(FLAGS_coroutines) ? Serve<ioloop::examples::CoroChatServer>(options)
                                         : Serve<ioloop::examples::ChatServer>(options);
}
