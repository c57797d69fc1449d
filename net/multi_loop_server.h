// MultiLoopTCPServer: one TCP server whose connections are spread across the loops of
// a LoopThreadPool (loop_thread/loop_thread.h), so a server uses more than one core.
//
//   LoopThreadPool pool(4);
//   pool.Start();
//   MultiLoopTCPServer server(&pool, [&](size_t loop_index, std::unique_ptr<IOStream> s,
//                                        const SocketAddress& peer) {
//     sessions[loop_index]->Serve(std::move(s));   // on loop_index's thread
//   }, {.mode = MultiLoopMode::kHandoff});
//   server.Listen(8888);
//   ...
//   server.Stop();       // no more connections; then tear down sessions, then pool.Stop()
//
// Each connection lives on one loop for its whole life: its IOStream is made on, and
// handle_stream called on, that loop's thread. The modes (docs/net.md, "More than one
// core", has the measurements):
//
// kReusePort: one listening socket per loop, all bound to the same port with
//   SO_REUSEPORT; the kernel picks a socket for each new connection by a hash of its
//   addresses and ports (nginx's `reuseport`). No hop between threads and no shared
//   accept queue. The spread is only statistically even: with few connections some
//   loops get more than others (a hash, not a rotation), and a loop that is stalled
//   (a slow handler, a long GC-like pause in user code) keeps being given its share,
//   which waits in its socket's backlog until the loop comes back. Connections still
//   waiting in a socket's backlog when Stop() closes it are reset. Choose it for many
//   short connections from many clients, where the hop of handoff would cost most and
//   the hash evens out.
// kHandoff: one listening socket, accepted on one loop (the acceptor, pool thread
//   `acceptor_index`), each accepted fd handed to the next loop in exact round-robin
//   order through LoopThread::AddCallback (seastar's and folly's way). Even spread
//   whatever the client addresses, at the cost of one cross-thread hop (a queue push
//   and, when the target loop sleeps, a wake-up) per connection, and the acceptor's
//   loop does all accepting. A stalled loop still gets its turn, but its connections
//   wait in its callback queue rather than in a backlog. Choose it for few,
//   long-lived connections (or few client addresses), where evenness matters more
//   than accept cost.
//
// EPOLLEXCLUSIVE (one shared listening socket in every loop's epoll, the kernel waking
// one loop per connection) is not offered: it needs a registration flag the Poller
// interface (backends/poller.h) does not have, and watching one listener from every
// loop without it wakes every loop for every connection.
//
// Thread-safety: construct, Listen(), Stop() and destroy from a thread that is not
// one of the pool's loop threads (they wait for the loops), while the pool runs.
// handle_stream runs on the loop threads, concurrently for different loops.

#ifndef IOLOOP_NET_MULTI_LOOP_SERVER_H_
#define IOLOOP_NET_MULTI_LOOP_SERVER_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "loop_thread/loop_thread.h"
#include "net/iostream.h"
#include "net/tcp_server.h"

namespace ioloop {

enum class MultiLoopMode { kReusePort, kHandoff };

// ParseMultiLoopMode(): "reuseport" or "handoff" (the names of the modes for flags);
// InvalidArgument naming `name` otherwise. MultiLoopModeName() is the reverse.
absl::StatusOr<MultiLoopMode> ParseMultiLoopMode(absl::string_view name);
absl::string_view MultiLoopModeName(MultiLoopMode mode);

// MultiLoopServerOptions: how a MultiLoopTCPServer listens and what its streams get.
struct MultiLoopServerOptions {
  MultiLoopMode mode = MultiLoopMode::kHandoff;
  // kHandoff: the pool thread whose loop accepts (it also serves its share).
  size_t acceptor_index = 0;
  int backlog = 1024;
  IOStream::Options stream_options = IOStream::Options();
  // Per listening socket. `stats` is ignored (each listener keeps its own).
  AcceptOptions accept_options = AcceptOptions();
};

class MultiLoopTCPServer {
 public:
  // HandleStream receives each connection on the thread of loop `loop_index` (the
  // stream is bound to pool.loop(loop_index)); the application owns the stream. It is
  // called concurrently from different loop threads, so it must be safe to call so
  // (typically it only indexes per-loop state by loop_index). Never called after
  // Stop() returned.
  using HandleStream = absl::AnyInvocable<void(size_t loop_index, std::unique_ptr<IOStream> stream,
                                               const SocketAddress& peer)>;

  // `pool` must be started, and outlive the server. Nothing listens before Listen().
  MultiLoopTCPServer(LoopThreadPool* pool, HandleStream handle_stream,
                     MultiLoopServerOptions options = MultiLoopServerOptions());
  ~MultiLoopTCPServer();  // Stop().
  MultiLoopTCPServer(const MultiLoopTCPServer&) = delete;
  MultiLoopTCPServer& operator=(const MultiLoopTCPServer&) = delete;

  // Listen() binds `address`:`port` (port 0: a free port, the same for every socket)
  // and starts accepting on the pool's loops as the mode says. Errors: BindSockets'
  // (naming the address), FailedPrecondition if a loop is not running or Listen() was
  // already called; on error nothing stays open or registered.
  absl::Status Listen(int port, absl::string_view address = "127.0.0.1");

  // Stop() stops accepting on every loop and closes the listening sockets; waits until
  // no loop is inside, or will later enter, handle_stream for this server (a
  // connection handed off but not yet delivered is closed instead). Streams already
  // delivered belong to the application and go on. Idempotent.
  void Stop();

  // Port(): the port Listen() bound (0 before). mode(): the mode it was made with.
  // Owning thread.
  int Port() const { return port_; }
  MultiLoopMode mode() const { return options_.mode; }

  // ConnectionsPerLoop(): how many streams each loop was given so far, by loop index.
  // Thread-safe (each count is read atomically).
  std::vector<uint64_t> ConnectionsPerLoop() const;

 private:
  struct Shared;
  struct Listener {
    size_t loop_index;
    int fd;
    absl::AnyInvocable<void()> remove;  // Set on the loop's thread.
  };

  absl::Status StartAccepting(size_t loop_index, int fd);

  LoopThreadPool* const pool_;
  const MultiLoopServerOptions options_;
  std::shared_ptr<Shared> shared_;  // Shared with the callbacks on the loops.
  std::vector<Listener> listeners_;
  int port_ = 0;
  bool listened_ = false;
};

}  // namespace ioloop

#endif  // IOLOOP_NET_MULTI_LOOP_SERVER_H_
