#include "examples/coro_chat_server.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "coro/coro.h"
#include "coro/stream.h"

namespace ioloop::examples {
absl::StatusOr<std::unique_ptr<CoroChatServer>> CoroChatServer::Listen(IOLoop* loop,
                                                                       ChatServerOptions options) {
  std::unique_ptr<CoroChatServer> server(new CoroChatServer(loop, options));
  if (absl::Status s = server->server_.Listen(options.port, options.host); !s.ok()) return s;
  return server;
}

CoroChatServer::CoroChatServer(IOLoop* loop, ChatServerOptions options)
    : room_(std::make_shared<Room>()),
      server_(
          loop,
          [loop, room = room_](std::unique_ptr<IOStream> stream, const SocketAddress&) {
            coro::Spawn(*loop, Session(std::move(stream), room));
          },
          options.StreamOptions()) {
  room_->options = std::move(options);
}

CoroChatServer::~CoroChatServer() {
  server_.Stop();
  // Completions run later, never inside Close(): the map is stable while we iterate.
  for (auto& [id, client] : room_->clients) client->stream->Close();
}

coro::Task<> CoroChatServer::Session(std::unique_ptr<IOStream> stream, std::shared_ptr<Room> room) {
  IOStream& s = *stream;
  const uint64_t id = room->next_id++;
  Client me{absl::StrCat("guest", id), &s};
  room->clients[id] = &me;
  struct Leave {  // However the task ends: returning, or destroyed by Close().
    Room* room;
    uint64_t id;
    Client* me;
    ~Leave() {
      room->clients.erase(id);
      room->Broadcast(nullptr, absl::StrCat("* ", me->nick, " left\n"));
    }
  } leave{room.get(), id, &me};

  room->Send(&me, absl::StrCat("* welcome, ", me.nick, "; /nick NAME to rename, /quit to leave\n"));
  room->Broadcast(&me, absl::StrCat("* ", me.nick, " joined\n"));
  while (true) {
    absl::StatusOr<std::string> read = co_await coro::ReadUntil(s, "\n", room->options.max_line);
    if (!read.ok()) {
      if (read.status().code() == absl::StatusCode::kResourceExhausted && !s.Closed()) {
        // Say why, half-close, and discard input until the peer closes: closing with
        // its line unread would reset the connection and could lose the notice.
        room->Send(&me, "* line too long\n");
        s.ShutdownWrite();
        (void)co_await coro::ReadUntilClose(s, [](absl::string_view) {});
      }
      co_return;  // Otherwise the stream closed: Leave says goodbye.
    }
    const absl::string_view line = absl::StripSuffix(absl::StripSuffix(*read, "\n"), "\r");
    ++room->messages;
    if (absl::StartsWith(line, "/nick ")) {
      const absl::string_view nick = absl::StripPrefix(line, "/nick ");
      if (nick.empty() || nick.size() > 32 || absl::StrContains(nick, ' ')) {
        room->Send(&me, "* a name is 1-32 characters without spaces\n");
      } else {
        room->Broadcast(&me, absl::StrCat("* ", me.nick, " is now ", nick, "\n"));
        me.nick = std::string(nick);
        room->Send(&me, absl::StrCat("* you are now ", me.nick, "\n"));
      }
    } else if (line == "/quit") {
      (void)co_await coro::Write(s, "* bye\n");
      co_return;  // The stream closes with the frame, after "bye" reached the kernel.
    } else if (!line.empty()) {
      room->Broadcast(&me, absl::StrCat("<", me.nick, "> ", line, "\n"));
    }
  }
}

void CoroChatServer::Room::Send(Client* c, absl::string_view text) {
  if (c->stream->Closed()) return;
  absl::Status s = c->stream->Write(text);
  if (s.code() == absl::StatusCode::kResourceExhausted) {
    // The client does not read: drop it rather than queue without limit. Its task
    // sees its read fail on a later loop turn, not inside this broadcast.
    ++dropped_slow;
    c->stream->Close(absl::ResourceExhaustedError("too slow: messages piled up unread"));
  }
}

void CoroChatServer::Room::Broadcast(const Client* from, absl::string_view text) {
  for (auto& [id, client] : clients) {
    if (client != from) Send(client, text);
  }
}

}  // namespace ioloop::examples
