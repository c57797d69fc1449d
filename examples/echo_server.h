// EchoServer: a TCP echo server on TCPServer and IOStream, the project's demo and load
// target.
//
// Every byte a client sends comes back. Each connection has one chunk in flight: read
// up to `max_buffered_bytes`, write it back, wait until it reached the kernel, read
// again. So a client that stops reading gets back-pressure (the server stops reading
// from it) and costs the server at most one chunk. A client that sends nothing for
// `idle_timeout` is dropped (slowloris). Running out of fds is absorbed by TCPServer.
//
// Thread-safety: create, use and destroy it on its loop's thread (or before the loop
// starts).

#ifndef IOLOOP_EXAMPLES_ECHO_SERVER_H_
#define IOLOOP_EXAMPLES_ECHO_SERVER_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "ioloop/io_loop.h"
#include "net/iostream.h"
#include "net/tcp_server.h"

namespace ioloop::examples {

struct EchoServerOptions {
  std::string host = "127.0.0.1";  // Loopback unless told otherwise.
  int port = 0;                    // 0 picks a free port; port() tells which.
  size_t max_buffered_bytes = 64 * 1024;
  int backlog = 1024;
  absl::Duration idle_timeout = absl::Seconds(60);
};

class EchoServer {
 public:
  // Listen() binds and starts serving on `loop`. Errors name the address.
  static absl::StatusOr<std::unique_ptr<EchoServer>> Listen(IOLoop* loop,
                                                            EchoServerOptions options);
  // ForStreams() makes a server that listens on nothing and echoes the streams given
  // to Serve(): one per loop when a MultiLoopTCPServer spreads connections
  // (examples/multi_loop_echo_server.h).
  static std::unique_ptr<EchoServer> ForStreams(IOLoop* loop, EchoServerOptions options);
  ~EchoServer();  // Closes the listener and every connection.

  // Serve() echoes `stream`, a connection on this server's loop. Loop thread.
  void Serve(std::unique_ptr<IOStream> stream);

  int port() const { return server_.Port(); }
  size_t open_connections() const { return connections_.size(); }
  uint64_t accepted() const { return server_.stats().accepted; }
  uint64_t bytes_echoed() const { return bytes_echoed_; }
  uint64_t dropped_for_fd_limit() const { return server_.stats().dropped_for_fd_limit; }
  uint64_t dropped_idle() const { return dropped_idle_; }
  // The most bytes any one connection ever had waiting to be written back.
  size_t peak_buffered_bytes() const { return peak_buffered_; }
  // Buffer memory the open connections hold now (read buffers' heap storage and
  // queued writes).
  size_t buffer_bytes() const;

 private:
  struct Connection {
    std::unique_ptr<IOStream> stream;
    absl::Time last_read;
    TimeoutHandle idle;
  };

  EchoServer(IOLoop* loop, EchoServerOptions options);
  void ReadNext(Connection* c);
  void CheckIdle(Connection* c);

  IOLoop* const loop_;
  const EchoServerOptions options_;
  TCPServer server_;
  absl::flat_hash_map<Connection*, std::unique_ptr<Connection>> connections_;
  uint64_t bytes_echoed_ = 0;
  uint64_t dropped_idle_ = 0;
  size_t peak_buffered_ = 0;
};

}  // namespace ioloop::examples

#endif  // IOLOOP_EXAMPLES_ECHO_SERVER_H_
