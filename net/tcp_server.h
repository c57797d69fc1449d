// TCP servers: listening sockets, an accept handler, and TCPServer, which hands each
// connection to the application as an IOStream.
//
// Tornado's netutil.bind_sockets / add_accept_handler and tcpserver.TCPServer:
//
//   TCPServer server(&loop, [&](std::unique_ptr<IOStream> stream, const SocketAddress& peer) {
//     Session::Start(std::move(stream));                // the application owns the stream
//   });
//   absl::Status s = server.Listen(8888);                  // 127.0.0.1:8888
//   loop.Start();
//
// Servers bind loopback unless given another address. Every socket made here is
// non-blocking and close-on-exec.
//
// Accepting: at most `max_accepts_per_wakeup` connections per readiness event, so a
// connection storm cannot starve the loop; ECONNABORTED (a client gone before accept)
// is skipped. When the process is out of descriptors (EMFILE/ENFILE), a reserved
// descriptor is closed, the pending connection accepted and closed at once (the client
// sees a reset, rather than waiting in the backlog while the listener stays readable
// and spins the loop), and the reserve reopened; when even that fails, accepting pauses
// for `retry_after` instead of spinning.
//
// Thread-safety: loop thread only.

#ifndef IOLOOP_NET_TCP_SERVER_H_
#define IOLOOP_NET_TCP_SERVER_H_

#include <sys/socket.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "ioloop/io_loop.h"
#include "net/iostream.h"

namespace ioloop {

// SocketAddress: an IPv4 or IPv6 address and port, as accept() or getsockname() gave it.
struct SocketAddress {
  sockaddr_storage storage = {};
  socklen_t length = 0;

  // Host(): "127.0.0.1" or "::1"; Port(): the port; ToString(): "127.0.0.1:8888" or
  // "[::1]:8888". Empty / 0 for an address of another family.
  std::string Host() const;
  int Port() const;
  std::string ToString() const;
};

// LocalAddress() is getsockname() of `fd`: which port a socket bound to port 0 got.
absl::StatusOr<SocketAddress> LocalAddress(int fd);

// BindSockets() creates listening sockets for `address` and `port`: one per address
// `address` resolves to (getaddrinfo with AI_PASSIVE: "127.0.0.1" gives one IPv4
// socket, "::1" one IPv6 socket, "localhost" possibly both, "" every interface on both
// families). Names are resolved with a blocking getaddrinfo: call it at start-up, not
// from a running loop. Port 0 picks a free port, the same one for every socket.
// Each socket has SO_REUSEADDR (and SO_REUSEPORT with `reuse_port`), IPV6_V6ONLY for
// IPv6, and is non-blocking and close-on-exec. Errors name the address: a port outside
// 0..65535 is kInvalidArgument, an unresolvable name kNotFound, a failed socket, bind or
// listen its errno as a status (absl::ErrnoToStatus's code, e.g. EADDRINUSE ->
// kUnavailable, with "bind 127.0.0.1 port 8888" and strerror in the message). Nothing
// is left open on error.
absl::StatusOr<std::vector<int>> BindSockets(int port, absl::string_view address = "127.0.0.1",
                                             int backlog = 128, bool reuse_port = false);

// AcceptStats: what an accept handler did, for monitoring and tests.
struct AcceptStats {
  uint64_t accepted = 0;
  // Connections accepted and closed at once because the process had no fd to spare.
  uint64_t dropped_for_fd_limit = 0;
  uint64_t aborted = 0;  // ECONNABORTED: the client left before accept().
  uint64_t pauses = 0;   // Times accepting paused because no fd at all was free.
};

struct AcceptOptions {
  int max_accepts_per_wakeup = 128;
  // How long accepting pauses when no descriptor can be freed for the reserve trick.
  absl::Duration retry_after = absl::Milliseconds(100);
  // Updated as the handler works, if set; must outlive the handler.
  AcceptStats* stats = nullptr;
};

// AcceptCallback receives each accepted connection's fd (non-blocking, close-on-exec,
// now owned by the callback) and the peer's address.
using AcceptCallback = absl::AnyInvocable<void(int fd, const SocketAddress& peer)>;

// AddAcceptHandler() watches the listening socket `listen_fd` on `loop` and calls
// `callback` for each connection. Returns a function that removes the handler (it does
// not close `listen_fd`), or the loop's error (kAlreadyExists if `listen_fd` has a
// handler...). The callback may call the remover (or destroy what owns it), even for
// the listener it is accepting on: no further connection is accepted from it.
absl::StatusOr<absl::AnyInvocable<void()>> AddAcceptHandler(IOLoop* loop, int listen_fd,
                                                            AcceptCallback callback,
                                                            AcceptOptions options = {});

// TCPServer accepts connections and passes each to `handle_stream` as an IOStream
// created with `stream_options`, with the peer's address. The application owns each
// stream it receives; streams outlive Stop() and the server.
class TCPServer {
 public:
  using HandleStream =
      absl::AnyInvocable<void(std::unique_ptr<IOStream> stream, const SocketAddress& peer)>;

  TCPServer(IOLoop* loop, HandleStream handle_stream,
            IOStream::Options stream_options = IOStream::Options(),
            AcceptOptions accept_options = AcceptOptions());
  ~TCPServer();  // Stop().
  TCPServer(const TCPServer&) = delete;
  TCPServer& operator=(const TCPServer&) = delete;

  // Listen() binds (BindSockets) and starts accepting. Errors as BindSockets and
  // AddSockets.
  absl::Status Listen(int port, absl::string_view address = "127.0.0.1");

  // AddSockets() starts accepting on listening sockets the caller made (for example
  // with BindSockets before forking); the server owns and closes them. On error none
  // of `fds` is kept and all of them are closed.
  absl::Status AddSockets(std::vector<int> fds);

  // Stop() stops accepting and closes the listening sockets; connections already
  // handed out go on. May be called from handle_stream. Idempotent.
  void Stop();

  // Sockets(): the listening fds; Port(): the first one's port (0 if none).
  const std::vector<int>& Sockets() const { return sockets_; }
  int Port() const;
  const AcceptStats& stats() const { return stats_; }

 private:
  IOLoop* const loop_;
  HandleStream handle_stream_;
  const IOStream::Options stream_options_;
  AcceptOptions accept_options_;
  std::vector<int> sockets_;
  std::vector<absl::AnyInvocable<void()>> removers_;
  AcceptStats stats_;
};

}  // namespace ioloop

#endif  // IOLOOP_NET_TCP_SERVER_H_
