// CoroChatServer: the chat server (examples/chat_server.h) with one coroutine per
// client: join, then a straight-line loop of `co_await ReadUntil` and broadcasts.
//
// Same protocol and limits as ChatServer: each line goes to every other client as
// "<nick> line"; `/nick NAME`, `/quit`; "* NAME joined/left"; a line longer than
// `max_line` gets "* line too long" and the connection ends; a client whose unread
// messages would pass `max_queued_bytes` is dropped ("too slow").
//
// Broadcasts do not await: they queue on each other stream (IOStream::Write) and a
// refusal closes that stream, whose own task then sees its read fail and leaves. A
// client leaves the room when its task ends, however it ends (its frame's destructor
// says "left"), including when the loop is closed.
//
// Ownership: each client's task owns its stream; the loop owns the tasks. Destroying
// the server stops accepting and closes every client; their tasks end on the loop's
// next iteration (or are destroyed if the loop is closed first).
//
// Thread-safety: the loop's thread only.

#ifndef IOLOOP_EXAMPLES_CORO_CHAT_SERVER_H_
#define IOLOOP_EXAMPLES_CORO_CHAT_SERVER_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "coro/task.h"
#include "examples/chat_server.h"
#include "ioloop/io_loop.h"
#include "net/iostream.h"
#include "net/tcp_server.h"

namespace ioloop::examples {

class CoroChatServer {
 public:
  // Listen binds and starts serving on `loop` (options as ChatServer's).
  static absl::StatusOr<std::unique_ptr<CoroChatServer>> Listen(IOLoop* loop,
                                                                ChatServerOptions options);
  ~CoroChatServer();

  int port() const { return server_.Port(); }
  size_t clients() const { return room_->clients.size(); }
  uint64_t dropped_slow() const { return room_->dropped_slow; }
  uint64_t messages() const { return room_->messages; }

 private:
  struct Client {
    std::string nick;
    IOStream* stream;
  };
  // Room: shared by the server and the clients' tasks, which may outlive it.
  struct Room {
    ChatServerOptions options;
    std::map<uint64_t, Client*> clients;  // By id: join order.
    uint64_t next_id = 1;
    uint64_t dropped_slow = 0;
    uint64_t messages = 0;
    void Send(Client* c, absl::string_view text);
    void Broadcast(const Client* from, absl::string_view text);
  };

  CoroChatServer(IOLoop* loop, ChatServerOptions options);
  static coro::Task<> Session(std::unique_ptr<IOStream> stream, std::shared_ptr<Room> room);

  std::shared_ptr<Room> room_;
  TCPServer server_;
};

}  // namespace ioloop::examples

#endif  // IOLOOP_EXAMPLES_CORO_CHAT_SERVER_H_
