// W5 on the stream layer: the echo server written on TCPServer + IOStream, the way a
// user would, for comparison with the raw-fd echo (workloads.h, EchoServerWorkload) on
// the same loop and on the raw epoll loop. Same client, same 64-byte ping-pong.
//
// Three styles:
//   kStreaming: ReadBytes(64 KiB, on_chunk, done) with on_chunk writing each chunk
//     straight back (a view into the stream's buffer: no copy when the kernel takes
//     it all), the next read started from `done`;
//   kStrings:   ReadBytes(64 KiB, cb, partial) returning a std::string, Write(data, cb)
//     and the next read once the write is flushed (Tornado's
//     `data = await read_bytes(n, partial=True); await write(data)`);
//   kCoroutine: the kStrings echo written as a coroutine (coro/): co_await ReadBytes,
//     co_await Write, in a loop; what coroutines cost over the callbacks they replace.
//
// The loop is built from the Options given (default: the build's default poller), so
// the same server measures IOStream on epoll and on io_uring; whichever I/O path
// IOStream picks for that loop (readiness today, completions once IOStream does
// recv/send as io_uring operations) is the one measured, with no change here.

#ifndef IOLOOP_BENCH_IOSTREAM_ECHO_H_
#define IOLOOP_BENCH_IOSTREAM_ECHO_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "bench/workloads.h"
#include "coro/coro.h"
#include "coro/stream.h"
#include "ioloop/io_loop.h"
#include "net/iostream.h"
#include "net/tcp_server.h"

namespace ioloop::bench {

class IOStreamEchoServer {
 public:
  enum class Style { kStreaming, kStrings, kCoroutine };
  static constexpr size_t kChunk = 64 * 1024;

  // A backlog that holds a 1,000-connection client's burst of connects while the
  // server is slowed down (callgrind, strace).
  static constexpr int kBacklog = 2048;

  explicit IOStreamEchoServer(Style style, IOLoop::Options loop_options = {})
      : style_(style),
        loop_(std::move(loop_options)),
        server_(&loop_, [this](std::unique_ptr<IOStream> s, const SocketAddress&) {
          Accept(std::move(s));
        }) {
    absl::StatusOr<std::vector<int>> fds = BindSockets(0, "127.0.0.1", kBacklog);
    if (!fds.ok() || !server_.AddSockets(*std::move(fds)).ok()) Fail("W5 iostream listen");
  }
  ~IOStreamEchoServer() {
    server_.Stop();
    streams_.clear();
  }

  int port() const { return server_.Port(); }
  IOLoop& loop() { return loop_; }
  uint64_t messages() const { return echoed_ / 64; }
  uint64_t bytes_echoed() const { return echoed_; }
  // Bytes the server's streams copied in user space, for bytes-copied-per-byte-echoed.
  uint64_t bytes_copied() const { return copied_ + LiveCopied(); }

  void ServeUntilAllClosed(int connections) {
    expected_ = connections;
    loop_.Start();
  }

 private:
  uint64_t LiveCopied() const {
    uint64_t n = 0;
    for (const auto& s : streams_) n += s->stats().bytes_copied;
    return n;
  }

  void Accept(std::unique_ptr<IOStream> s) {
    IOStream* stream = s.get();
    streams_.push_back(std::move(s));
    ++accepted_;
    stream->SetNoDelay(true).IgnoreError();
    stream->SetCloseCallback([this, stream] {
      copied_ += stream->stats().bytes_copied;
      for (auto& owned : streams_) {
        if (owned.get() == stream) {
          owned = std::move(streams_.back());
          streams_.pop_back();
          break;
        }
      }
      if (++closed_ == expected_ && accepted_ == expected_) loop_.Stop();
    });
    if (style_ == Style::kCoroutine) {
      coro::Spawn(loop_, Echo(stream));
    } else {
      Read(stream);
    }
  }

  // The coroutine echo. It touches the stream only while its reads and writes succeed:
  // a failed read means the stream closed (its close callback may destroy it next).
  coro::Task<> Echo(IOStream* stream) {
    while (true) {
      absl::StatusOr<std::string> data =
          co_await coro::ReadBytes(*stream, kChunk, /*partial=*/true);
      if (!data.ok()) co_return;
      const size_t n = data->size();
      if (!(co_await coro::Write(*stream, *data)).ok()) co_return;
      echoed_ += n;
    }
  }

  void Read(IOStream* stream) {
    if (style_ == Style::kStreaming) {
      stream->ReadBytes(
          kChunk,
          [this, stream](absl::string_view chunk) {
            if (stream->Write(chunk).ok()) echoed_ += chunk.size();
          },
          [this, stream](absl::Status s) {
            if (s.ok()) Read(stream);
          });
    } else {
      stream->ReadBytes(
          kChunk,
          [this, stream](absl::StatusOr<std::string> data) {
            if (!data.ok()) return;
            const size_t n = data->size();
            stream
                ->Write(*data,
                        [this, stream, n](absl::Status s) {
                          if (!s.ok()) return;
                          echoed_ += n;
                          Read(stream);
                        })
                .IgnoreError();
          },
          /*partial=*/true);
    }
  }

  const Style style_;
  IOLoop loop_;
  TCPServer server_;
  std::vector<std::unique_ptr<IOStream>> streams_;
  int expected_ = 0;
  int accepted_ = 0;
  int closed_ = 0;
  uint64_t echoed_ = 0;
  uint64_t copied_ = 0;
};

}  // namespace ioloop::bench

#endif  // IOLOOP_BENCH_IOSTREAM_ECHO_H_
