#include "examples/chat_server.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace ioloop::examples {
absl::StatusOr<std::unique_ptr<ChatServer>> ChatServer::Listen(IOLoop* loop,
                                                               ChatServerOptions options) {
  std::unique_ptr<ChatServer> server(new ChatServer(loop, options));
  if (absl::Status s = server->server_.Listen(options.port, options.host); !s.ok()) return s;
  return server;
}

ChatServer::ChatServer(IOLoop* loop, ChatServerOptions options)
    : options_(std::move(options)),
      server_(
          loop,
          [this](std::unique_ptr<IOStream> stream, const SocketAddress&) {
            Join(std::move(stream));
          },
          options_.StreamOptions()) {}

ChatServer::~ChatServer() {
  server_.Stop();
  clients_.clear();
}

void ChatServer::Join(std::unique_ptr<IOStream> stream) {
  auto owned = std::make_unique<Client>();
  Client* c = owned.get();
  c->id = next_id_++;
  c->nick = absl::StrCat("guest", c->id);
  c->stream = std::move(stream);
  clients_[c->id] = std::move(owned);
  c->stream->SetCloseCallback([this, c] {
    const std::string nick = c->nick;
    clients_.erase(c->id);  // Destroys the stream from its own close callback.
    Broadcast(nullptr, absl::StrCat("* ", nick, " left\n"));
  });
  Send(c, absl::StrCat("* welcome, ", c->nick, "; /nick NAME to rename, /quit to leave\n"));
  Broadcast(c, absl::StrCat("* ", c->nick, " joined\n"));
  ReadLine(c);
}

void ChatServer::ReadLine(Client* c) {
  c->stream->ReadUntil(
      "\n",
      [this, c](absl::StatusOr<std::string> line) {
        if (line.ok()) {
          OnLine(c, absl::StripSuffix(absl::StripSuffix(*line, "\n"), "\r"));
        } else if (line.status().code() == absl::StatusCode::kResourceExhausted) {
          // Say why, half-close, and discard input until the peer closes: closing
          // with its line unread would reset the connection and could lose the notice.
          Send(c, "* line too long\n");
          c->stream->ShutdownWrite();
          c->stream->ReadUntilClose([](absl::string_view) {}, [](absl::Status) {});
        }
        // Otherwise the stream closed: its close callback says goodbye for it.
      },
      options_.max_line);
}

void ChatServer::OnLine(Client* c, absl::string_view line) {
  ++messages_;
  if (absl::StartsWith(line, "/nick ")) {
    const absl::string_view nick = absl::StripPrefix(line, "/nick ");
    if (nick.empty() || nick.size() > 32 || absl::StrContains(nick, ' ')) {
      Send(c, "* a name is 1-32 characters without spaces\n");
    } else {
      Broadcast(c, absl::StrCat("* ", c->nick, " is now ", nick, "\n"));
      c->nick = std::string(nick);
      Send(c, absl::StrCat("* you are now ", c->nick, "\n"));
    }
  } else if (line == "/quit") {
    Client* quitting = c;
    quitting->stream
        ->Write("* bye\n",
                [quitting](absl::Status) {
                  quitting->stream->Close();  // After "bye" reached the kernel.
                })
        .IgnoreError();
    return;  // No next read: the stream closes once "bye" is out.
  } else if (!line.empty()) {
    Broadcast(c, absl::StrCat("<", c->nick, "> ", line, "\n"));
  }
  ReadLine(c);
}

void ChatServer::Send(Client* c, absl::string_view text) {
  if (c->stream->Closed()) return;
  absl::Status s = c->stream->Write(text);
  if (s.code() == absl::StatusCode::kResourceExhausted) {
    // The client does not read: drop it rather than queue without limit. Its close
    // callback runs later, on the loop, not inside this broadcast.
    ++dropped_slow_;
    c->stream->Close(absl::ResourceExhaustedError("too slow: messages piled up unread"));
  }
}

void ChatServer::Broadcast(const Client* from, absl::string_view text) {
  for (auto& [id, client] : clients_) {
    if (client.get() != from) Send(client.get(), text);
  }
}

}  // namespace ioloop::examples
