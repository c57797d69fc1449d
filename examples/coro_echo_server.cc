#include "examples/coro_echo_server.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "coro/coro.h"
#include "coro/stream.h"

namespace ioloop::examples {
namespace {

// What one co_await gives: 1..max bytes as soon as any are there.
coro::Task<absl::StatusOr<std::string>> ReadSome(IOStream& stream, size_t max) {
  co_return co_await coro::ReadBytes(stream, max, /*partial=*/true);
}

}  // namespace

absl::StatusOr<std::unique_ptr<CoroEchoServer>> CoroEchoServer::Listen(IOLoop* loop,
                                                                       EchoServerOptions options) {
  std::unique_ptr<CoroEchoServer> server(new CoroEchoServer(loop, options));
  absl::StatusOr<std::vector<int>> fds = BindSockets(options.port, options.host, options.backlog);
  if (!fds.ok()) return fds.status();
  if (absl::Status s = server->server_.AddSockets(*std::move(fds)); !s.ok()) return s;
  return server;
}

CoroEchoServer::CoroEchoServer(IOLoop* loop, EchoServerOptions options)
    : state_(std::make_shared<State>(State{std::move(options), {}, {}})),
      server_(loop, [loop, state = state_](std::unique_ptr<IOStream> stream, const SocketAddress&) {
        coro::Spawn(*loop, Serve(std::move(stream), state));
      }) {}

CoroEchoServer::~CoroEchoServer() {
  server_.Stop();
  // Completions run later, never inside Close(): the set is stable while we iterate.
  for (IOStream* stream : state_->streams) stream->Close();
}

coro::Task<> CoroEchoServer::Serve(std::unique_ptr<IOStream> stream, std::shared_ptr<State> state) {
  IOStream& s = *stream;
  ++state->stats.accepted;
  ++state->stats.open_connections;
  state->streams.insert(&s);
  struct Leave {  // Runs however the task ends: returning, or destroyed by Close().
    State* state;
    IOStream* stream;
    ~Leave() {
      state->streams.erase(stream);
      --state->stats.open_connections;
    }
  } leave{state.get(), &s};
  s.SetNoDelay(true).IgnoreError();
  const size_t max = state->options.max_buffered_bytes;
  while (true) {
    absl::StatusOr<std::string> data;
    try {
      data = co_await coro::WithTimeout(state->options.idle_timeout, ReadSome(s, max));
    } catch (const coro::TimeoutError&) {
      ++state->stats.dropped_idle;  // The cancelled read closed the stream.
      co_return;
    }
    if (!data.ok()) co_return;  // EOF or error: the stream says why.
    if (!(co_await coro::Write(s, *data)).ok()) co_return;
    state->stats.bytes_echoed += data->size();
  }
}

}  // namespace ioloop::examples
