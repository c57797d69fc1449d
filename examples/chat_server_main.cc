// chat_server: a line-protocol chat room, written with callbacks (ChatServer) or, with
// --coroutines, as coroutines (CoroChatServer); the two behave the same.
//
//   ./bazelw run //examples:chat_server -- --port=8889 [--coroutines]
//   nc 127.0.0.1 8889        (in two terminals; /nick NAME, /quit)
//
// Binds loopback unless --host says otherwise. Ctrl-C (SIGINT) or SIGTERM stops it.

#include <cstdio>
#include <string>

#include "examples/chat_server.h"
#include "examples/coro_chat_server.h"
#include "examples/internal/server_main.h"
#include "ioloop/io_loop.h"

ABSL_FLAG(std::string, host, "127.0.0.1", "address to listen on");
ABSL_FLAG(int, port, 8889, "port to listen on (0: any free port)");
ABSL_FLAG(int, max_line, 1024, "longest line a client may send");
ABSL_FLAG(int, max_queued_bytes, 256 * 1024, "unread bytes after which a client is dropped");
ABSL_FLAG(bool, coroutines, false, "serve with the coroutine version (coro/)");

namespace {
template <typename Server>
int Serve(const ioloop::examples::ChatServerOptions& options) {
  ioloop::IOLoop loop;
  auto server = Server::Listen(&loop, options);
  if (!server.ok()) return ioloop::examples::ReportError("chat_server", server.status());
  ioloop::examples::ServeUntilStopSignal(loop, "chat_server", options.host, (*server)->port());
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
