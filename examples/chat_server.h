// ChatServer: a line-protocol chat room on TCPServer and IOStream.
//
// Each line a client sends goes to every other client as "<nick> line". Commands:
//   /nick NAME   take a name (1-32 characters, no spaces); others see the change;
//   /quit        leave: "* bye", then the server closes the connection.
// Clients see "* NAME joined" and "* NAME left". A line longer than `max_line` gets
// "* line too long" and the connection is closed.
//
// Many streams write to each other here, so write back-pressure and close ordering
// matter: a client that does not read its messages piles them up in its stream's
// write queue, and once that would pass `max_queued_bytes` it is dropped ("too slow")
// instead of growing the server's memory. Closes (quit, EOF, errors, slow clients)
// all go through the stream's close callback, which runs after the stream's pending
// read, never inside a broadcast: broadcasting may close streams while iterating.
//
// Thread-safety: the loop's thread only.

#ifndef IOLOOP_EXAMPLES_CHAT_SERVER_H_
#define IOLOOP_EXAMPLES_CHAT_SERVER_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "ioloop/io_loop.h"
#include "net/iostream.h"
#include "net/tcp_server.h"

namespace ioloop::examples {

struct ChatServerOptions {
  std::string host = "127.0.0.1";
  int port = 0;
  size_t max_line = 1024;
  size_t max_queued_bytes = 256 * 1024;

  // StreamOptions(): the per-client stream bounds these options imply.
  IOStream::Options StreamOptions() const {
    IOStream::Options stream;
    stream.max_write_buffer_size = max_queued_bytes;
    return stream;
  }
};

class ChatServer {
 public:
  static absl::StatusOr<std::unique_ptr<ChatServer>> Listen(IOLoop* loop,
                                                            ChatServerOptions options);
  ~ChatServer();

  int port() const { return server_.Port(); }
  size_t clients() const { return clients_.size(); }
  uint64_t dropped_slow() const { return dropped_slow_; }
  uint64_t messages() const { return messages_; }

 private:
  struct Client {
    uint64_t id;
    std::string nick;
    std::unique_ptr<IOStream> stream;
  };

  ChatServer(IOLoop* loop, ChatServerOptions options);
  void Join(std::unique_ptr<IOStream> stream);
  void ReadLine(Client* c);
  void OnLine(Client* c, absl::string_view line);
  void Send(Client* c, absl::string_view text);
  void Broadcast(const Client* from, absl::string_view text);

  const ChatServerOptions options_;
  TCPServer server_;
  std::map<uint64_t, std::unique_ptr<Client>> clients_;  // By id: join order.
  uint64_t next_id_ = 1;
  uint64_t dropped_slow_ = 0;
  uint64_t messages_ = 0;
};

}  // namespace ioloop::examples

#endif  // IOLOOP_EXAMPLES_CHAT_SERVER_H_
