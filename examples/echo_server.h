// EchoServer: a TCP echo server on an IOLoop, the project's demo and load target.
//
// Every byte a client sends comes back. Per-connection memory is bounded: at most
// `max_buffered_bytes` wait to be written back; when a client stops reading, the
// server stops reading from it too (back-pressure) instead of buffering without
// limit. When the process runs out of fds, accept() failures with EMFILE are absorbed
// with a reserved descriptor (close it, accept and drop the connection, reopen), so
// the listening socket does not spin the loop at 100% CPU.
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
#include "ioloop/io_loop.h"

namespace ioloop::examples {

struct EchoServerOptions {
  // Loopback unless told otherwise.
  std::string host = "127.0.0.1";
  // 0 picks a free port; port() tells which.
  int port = 0;
  size_t max_buffered_bytes = 64 * 1024;
  int backlog = 1024;
};

class EchoServer {
 public:
  // Listen() binds, listens and registers with `loop`. Errors name the address.
  static absl::StatusOr<std::unique_ptr<EchoServer>> Listen(IOLoop* loop,
                                                            EchoServerOptions options);
  ~EchoServer();  // Closes the listener and every connection.
  EchoServer(const EchoServer&) = delete;
  EchoServer& operator=(const EchoServer&) = delete;

  int port() const { return port_; }
  size_t open_connections() const { return connections_.size(); }
  uint64_t accepted() const { return accepted_; }
  uint64_t bytes_echoed() const { return bytes_echoed_; }
  // Connections dropped at accept time because the process had no fd to spare.
  uint64_t dropped_for_fd_limit() const { return dropped_for_fd_limit_; }
  // The most bytes any one connection ever had waiting to be written back.
  size_t peak_buffered_bytes() const { return peak_buffered_; }

 private:
  struct Connection {
    std::string pending;  // Bytes read and not yet written back.
    bool peer_closed = false;
    EventMask watching = kNone;
  };

  EchoServer(IOLoop* loop, int listen_fd, int port, EchoServerOptions options);
  void OnAcceptable();
  void OnConnectionEvent(int fd, EventMask events);
  void Flush(int fd, Connection& c);
  void Watch(int fd, Connection& c);
  void CloseConnection(int fd);

  IOLoop* const loop_;
  const int listen_fd_;
  const int port_;
  const EchoServerOptions options_;
  int reserve_fd_ = -1;
  absl::flat_hash_map<int, std::unique_ptr<Connection>> connections_;
  uint64_t accepted_ = 0;
  uint64_t bytes_echoed_ = 0;
  uint64_t dropped_for_fd_limit_ = 0;
  size_t peak_buffered_ = 0;
};

}  // namespace ioloop::examples

#endif  // IOLOOP_EXAMPLES_ECHO_SERVER_H_
