// MultiLoopEchoServer: the echo server (examples/echo_server.h) on a LoopThreadPool,
// its connections spread across the loops by a MultiLoopTCPServer in either mode
// (net/multi_loop_server.h). One EchoServer per loop, made, used and destroyed on its
// loop's thread; they share nothing, so no lock is taken per connection or per byte.
//
// Thread-safety: Listen(), Shutdown(), the counters and the destructor from one thread
// that is not a loop thread of the pool, while the pool runs.

#ifndef IOLOOP_EXAMPLES_MULTI_LOOP_ECHO_SERVER_H_
#define IOLOOP_EXAMPLES_MULTI_LOOP_ECHO_SERVER_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "examples/echo_server.h"
#include "loop_thread/loop_thread.h"
#include "net/multi_loop_server.h"

namespace ioloop::examples {

class MultiLoopEchoServer {
 public:
  // Listen() makes an EchoServer on each of `pool`'s loops (started, and outliving
  // this server) and listens on options.host:options.port in `mode`. Errors: a loop
  // not running, or MultiLoopTCPServer::Listen's.
  static absl::StatusOr<std::unique_ptr<MultiLoopEchoServer>> Listen(LoopThreadPool* pool,
                                                                     EchoServerOptions options,
                                                                     MultiLoopMode mode);
  // ~MultiLoopEchoServer() is Shutdown().
  ~MultiLoopEchoServer();

  // Shutdown() stops accepting, then closes every connection on each loop, on that
  // loop's thread. The pool keeps running. Idempotent.
  void Shutdown();

  int port() const { return server_->Port(); }
  // Connections each loop was given, by loop index.
  std::vector<uint64_t> ConnectionsPerLoop() const { return server_->ConnectionsPerLoop(); }
  // Bytes echoed by each loop (asks each loop; empty after Shutdown()).
  std::vector<uint64_t> BytesEchoedPerLoop();

 private:
  explicit MultiLoopEchoServer(LoopThreadPool* pool) : pool_(pool) {}

  LoopThreadPool* const pool_;
  std::vector<std::unique_ptr<EchoServer>> echoes_;  // echoes_[i] lives on loop i.
  std::unique_ptr<MultiLoopTCPServer> server_;
};

}  // namespace ioloop::examples

#endif  // IOLOOP_EXAMPLES_MULTI_LOOP_ECHO_SERVER_H_
