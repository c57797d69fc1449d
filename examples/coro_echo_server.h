// CoroEchoServer: the echo server (examples/echo_server.h) written as a coroutine per
// connection: a straight-line read–write loop instead of a callback chain.
//
//   Task<> Serve(stream) {
//     while (true) {
//       data = co_await WithTimeout(idle, ReadSome(stream));   // TimeoutError: idle
//       if (!data.ok()) co_return;                             // EOF or error
//       if (!(co_await Write(stream, *data)).ok()) co_return;
//     }
//   }
//
// Same behaviour as EchoServer: one chunk in flight per connection (read up to
// `max_buffered_bytes`, write it back, wait until the kernel took it), so a client that
// stops reading gets back-pressure; a client silent for `idle_timeout` is dropped (here
// by WithTimeout cancelling the pending read, which closes the stream).
//
// Ownership: each connection's task owns its stream; the loop owns the tasks
// (coro::Spawn). Destroying the server stops accepting and closes every connection;
// their tasks end on the loop's next iteration (or are destroyed if the loop is
// closed first).
//
// Thread-safety: create, use and destroy it on its loop's thread.

#ifndef IOLOOP_EXAMPLES_CORO_ECHO_SERVER_H_
#define IOLOOP_EXAMPLES_CORO_ECHO_SERVER_H_

#include <cstdint>
#include <memory>

#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "coro/task.h"
#include "examples/echo_server.h"
#include "ioloop/io_loop.h"
#include "net/iostream.h"
#include "net/tcp_server.h"

namespace ioloop::examples {

class CoroEchoServer {
 public:
  struct Stats {
    uint64_t accepted = 0;
    uint64_t bytes_echoed = 0;
    uint64_t dropped_idle = 0;
    size_t open_connections = 0;
  };

  // Listen binds and starts serving on `loop` (options as EchoServer's). Errors name
  // the address.
  static absl::StatusOr<std::unique_ptr<CoroEchoServer>> Listen(IOLoop* loop,
                                                                EchoServerOptions options);
  ~CoroEchoServer();

  int port() const { return server_.Port(); }
  const Stats& stats() const { return state_->stats; }

 private:
  // State: shared by the server and its connections' tasks, which may outlive it.
  struct State {
    EchoServerOptions options;
    Stats stats;
    absl::flat_hash_set<IOStream*> streams;
  };

  CoroEchoServer(IOLoop* loop, EchoServerOptions options);
  static coro::Task<> Serve(std::unique_ptr<IOStream> stream, std::shared_ptr<State> state);

  std::shared_ptr<State> state_;
  TCPServer server_;
};

}  // namespace ioloop::examples

#endif  // IOLOOP_EXAMPLES_CORO_ECHO_SERVER_H_
