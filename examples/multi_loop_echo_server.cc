#include "examples/multi_loop_echo_server.h"

#include <utility>

namespace ioloop::examples {

absl::StatusOr<std::unique_ptr<MultiLoopEchoServer>> MultiLoopEchoServer::Listen(
    LoopThreadPool* pool, EchoServerOptions options, MultiLoopMode mode) {
  std::unique_ptr<MultiLoopEchoServer> server(new MultiLoopEchoServer(pool));
  server->echoes_.resize(pool->size());
  for (size_t i = 0; i < pool->size(); ++i) {
    absl::Status s = pool->thread(i).RunAndWait(
        [&, i] { server->echoes_[i] = EchoServer::ForStreams(pool->loop(i), options); });
    if (!s.ok()) return s;
  }
  MultiLoopServerOptions server_options;
  server_options.mode = mode;
  server_options.backlog = options.backlog;
  MultiLoopEchoServer* self = server.get();
  server->server_ = std::make_unique<MultiLoopTCPServer>(
      pool,
      [self](size_t i, std::unique_ptr<IOStream> stream, const SocketAddress&) {
        self->echoes_[i]->Serve(std::move(stream));
      },
      server_options);
  if (absl::Status s = server->server_->Listen(options.port, options.host); !s.ok()) return s;
  return server;
}

MultiLoopEchoServer::~MultiLoopEchoServer() { Shutdown(); }

void MultiLoopEchoServer::Shutdown() {
  if (server_ != nullptr) server_->Stop();
  for (size_t i = 0; i < echoes_.size(); ++i) {
    if (echoes_[i] == nullptr) continue;
    // A loop that was stopped first cannot be reached: wait for its thread to finish
    // closing it, then destroy the EchoServer here (a stopped loop may be used from
    // any one thread).
    if (!pool_->thread(i).RunAndWait([this, i] { echoes_[i].reset(); }).ok()) {
      pool_->thread(i).Join();
      echoes_[i].reset();
    }
  }
  echoes_.clear();
}

std::vector<uint64_t> MultiLoopEchoServer::BytesEchoedPerLoop() {
  std::vector<uint64_t> bytes(echoes_.size());
  for (size_t i = 0; i < echoes_.size(); ++i) {
    pool_->thread(i).RunAndWait([&, i] { bytes[i] = echoes_[i]->bytes_echoed(); }).IgnoreError();
  }
  return bytes;
}

}  // namespace ioloop::examples
