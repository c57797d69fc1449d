#include "examples/echo_server.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace ioloop::examples {

absl::StatusOr<std::unique_ptr<EchoServer>> EchoServer::Listen(IOLoop* loop,
                                                               EchoServerOptions options) {
  std::unique_ptr<EchoServer> server(new EchoServer(loop, options));
  absl::StatusOr<std::vector<int>> fds = BindSockets(options.port, options.host, options.backlog);
  if (!fds.ok()) return fds.status();
  if (absl::Status s = server->server_.AddSockets(*std::move(fds)); !s.ok()) return s;
  return server;
}

std::unique_ptr<EchoServer> EchoServer::ForStreams(IOLoop* loop, EchoServerOptions options) {
  return std::unique_ptr<EchoServer>(new EchoServer(loop, std::move(options)));
}

EchoServer::EchoServer(IOLoop* loop, EchoServerOptions options)
    : loop_(loop),
      options_(std::move(options)),
      server_(loop, [this](std::unique_ptr<IOStream> stream, const SocketAddress&) {
        Serve(std::move(stream));
      }) {}

EchoServer::~EchoServer() {
  server_.Stop();
  for (auto& [c, owned] : connections_) loop_->RemoveTimeout(c->idle);
  connections_.clear();  // Destroying a stream closes it and drops its callbacks.
}

size_t EchoServer::buffer_bytes() const {
  size_t total = 0;
  for (const auto& [c, owned] : connections_) {
    total += c->stream->BufferCapacity() + c->stream->WriteBufferSize();
  }
  return total;
}

void EchoServer::Serve(std::unique_ptr<IOStream> stream) {
  auto owned = std::make_unique<Connection>();
  Connection* c = owned.get();
  connections_[c] = std::move(owned);
  c->stream = std::move(stream);
  c->stream->SetNoDelay(true).IgnoreError();
  c->stream->SetCloseCallback([this, c] {
    loop_->RemoveTimeout(c->idle);
    connections_.erase(c);  // Destroys the stream from its own close callback.
  });
  c->last_read = loop_->Time();
  c->idle = loop_->AddTimeout(options_.idle_timeout, [this, c] { CheckIdle(c); });
  ReadNext(c);
}

// One chunk in flight: read, write it back, wait for the kernel to take it, repeat.
void EchoServer::ReadNext(Connection* c) {
  c->stream->ReadBytes(
      options_.max_buffered_bytes,
      [this, c](absl::StatusOr<std::string> data) {
        if (!data.ok()) return;  // The stream closed; its close callback cleans up.
        c->last_read = loop_->Time();
        const size_t n = data->size();
        peak_buffered_ = std::max(peak_buffered_, c->stream->WriteBufferSize() + n);
        c->stream
            ->Write(*data,
                    [this, c, n](absl::Status written) {
                      if (!written.ok()) return;
                      bytes_echoed_ += n;
                      ReadNext(c);
                    })
            .IgnoreError();  // Fails only on a closed stream.
      },
      /*partial=*/true);
}

// Deadlines move with every read; the timeout re-arms for the remainder instead of
// being replaced on each read (one timer operation per idle period).
void EchoServer::CheckIdle(Connection* c) {
  const absl::Time deadline = c->last_read + options_.idle_timeout;
  if (loop_->Time() < deadline) {
    c->idle = loop_->AddTimeout(deadline, [this, c] { CheckIdle(c); });
    return;
  }
  c->idle = TimeoutHandle();
  ++dropped_idle_;
  c->stream->Close(absl::DeadlineExceededError(
      absl::StrCat("idle for ", absl::FormatDuration(options_.idle_timeout))));
}

}  // namespace ioloop::examples
