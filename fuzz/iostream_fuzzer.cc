// Fuzz target: IOStream against a model of the byte stream.
//
// An input is a program over one IOStream on a socketpair, on the fake poller with
// the sockets' real readiness: the peer writes chunks of random size and content
// (delimiters anywhere), the stream starts reads of every form with random sizes and
// limits, the loop runs, the peer half-closes at any byte, the stream writes bursts
// and closes. The model is the bytes the peer sent and how many reads consumed; each
// completion must agree with it:
//   - every byte a read returns is the next unconsumed byte sent, in order;
//   - ReadUntil returns through the first delimiter, within max_bytes; a limit error
//     means the delimiter does not end within max_bytes;
//   - a read that fails on close could not have been satisfied by what was buffered;
//   - ReadUntilClose after the peer's EOF returns everything not yet consumed;
//   - the close callback runs at most once, with no read pending, and after the peer
//     closed every read completes (none hangs);
//   - the peer receives exactly the bytes of the stream's OK writes, in order, and
//     every write callback runs exactly once.
//
// Built with IOLOOP_IOSTREAM_FUZZ_ON_IO_URING defined (the `iostream_uring` target),
// the same programs run on a real io_uring loop instead of the fake poller, so
// IOStream's I/O path on io_uring (readiness through io_uring poll, or recv/send as
// io_uring operations) meets the same model. Each RunOnce() there is one zero-timeout
// poll of the real backend: completions may arrive an iteration later than on the
// fake, which the model allows (it checks contents and ordering, not timing). Where
// the kernel refuses io_uring, that target runs nothing and says why once.

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "fuzz/fuzz_input.h"
#include "net/iostream.h"
#include "net/testing/net_test_loop.h"

namespace ioloop::fuzz {
namespace {

struct Model {
  std::string sent;     // Bytes the peer wrote.
  size_t consumed = 0;  // Bytes reads returned.
  bool peer_closed = false;
  bool stream_closed_by_us = false;
  std::string written;     // Bytes of the stream's accepted writes.
  std::string received;    // Bytes the peer read.
  int writes_pending = 0;  // Write callbacks not yet run.
  int close_callbacks = 0;
};

constexpr const char* kAlphabet = "ab\n|";

#ifdef IOLOOP_IOSTREAM_FUZZ_ON_IO_URING
constexpr const char* kBackend = "io_uring";
#else
constexpr const char* kBackend = "fake";
#endif

// BackendAvailable(): whether kBackend can run here (io_uring may be refused), asked
// once per process.
bool BackendAvailable() {
  static const bool available = [] {
    if (std::string(kBackend) == "fake") return true;
    absl::StatusOr<std::unique_ptr<Poller>> poller = NewPoller(kBackend);
    if (!poller.ok()) {
      std::fprintf(stderr, "iostream fuzzer: %s refused, running nothing: %s\n", kBackend,
                   poller.status().ToString().c_str());
    }
    return poller.ok();
  }();
  return available;
}

void Check(bool ok, const char* what) {
  if (!ok) Violation(what);
}

void Run(FuzzInput& in) {
  if (!BackendAvailable()) return;
  net_testing::NetTestLoop t(kBackend);
  const auto [mine, peer_fd] = net_testing::SocketPair(/*nonblocking_peer=*/true);
  const int peer = peer_fd;  // A plain variable: lambdas capture it.
  IOStream::Options options;
  options.read_chunk_size = 1 + in.Below(64);
  options.max_buffer_size = 1 + in.Below(512);
  options.max_write_buffer_size = 1 + in.Below(4096);
  auto stream = std::make_unique<IOStream>(t.loop(), mine, options);
  Model m;
  stream->SetCloseCallback([&] {
    ++m.close_callbacks;
    Check(!stream->Reading(), "close callback ran with a read pending");
  });

  // Checks the next `data` bytes against the model and consumes them.
  auto consume = [&](absl::string_view data) {
    Check(m.consumed + data.size() <= m.sent.size(), "a read returned bytes never sent");
    Check(m.sent.compare(m.consumed, data.size(), data.data(), data.size()) == 0,
          "a read returned bytes out of order");
    m.consumed += data.size();
  };
  auto available = [&] { return m.sent.size() - m.consumed; };

  auto start_read = [&](uint32_t kind, uint32_t a, uint32_t b) {
    if (stream->Reading()) return;
    switch (kind % 6) {
      case 0:
      case 1: {
        const std::string delim = kind % 6 == 0 ? "\n" : "|\n";
        const size_t max = b % 3 == 0 ? 0 : a % 100;
        const size_t limit =
            max == 0 ? options.max_buffer_size : std::min<size_t>(max, options.max_buffer_size);
        stream->ReadUntil(
            delim,
            [&, delim, limit](absl::StatusOr<std::string> r) {
              const size_t first = m.sent.find(delim, m.consumed);
              if (r.ok()) {
                Check(r->size() <= limit, "ReadUntil returned more than max_bytes");
                Check(first != std::string::npos && first + delim.size() == m.consumed + r->size(),
                      "ReadUntil did not stop at the first delimiter");
                consume(*r);
              } else if (r.status().code() == absl::StatusCode::kResourceExhausted) {
                Check(first == std::string::npos || first + delim.size() > m.consumed + limit,
                      "ReadUntil reported a limit the delimiter was within");
              } else {
                const size_t buffered = stream->ReadBufferSize();
                Check(m.consumed + buffered <= m.sent.size(), "buffer holds bytes never sent");
                Check(first == std::string::npos || first + delim.size() > m.consumed + buffered,
                      "ReadUntil failed though the buffer held the delimiter");
              }
            },
            max);
        break;
      }
      case 2: {
        const size_t n = a % 80;
        const bool partial = b % 2 == 0;
        stream->ReadBytes(
            n,
            [&, n, partial](absl::StatusOr<std::string> r) {
              if (r.ok()) {
                Check(partial ? r->size() <= n && (r->size() > 0 || n == 0) : r->size() == n,
                      "ReadBytes returned the wrong size");
                consume(*r);
              } else if (r.status().code() == absl::StatusCode::kResourceExhausted) {
                Check(!partial && n > options.max_buffer_size,
                      "ReadBytes refused a size that fits the buffer");
              } else {
                const size_t buffered = stream->ReadBufferSize();
                Check(partial ? buffered == 0 : buffered < n,
                      "ReadBytes failed though the buffer could satisfy it");
              }
            },
            partial);
        break;
      }
      case 3: {
        auto remaining = std::make_shared<size_t>(a % 80);
        stream->ReadBytes(
            *remaining,
            [&, remaining](absl::string_view chunk) {
              Check(!chunk.empty() && chunk.size() <= *remaining, "bad streaming chunk size");
              *remaining -= chunk.size();
              consume(chunk);
            },
            [&, remaining](absl::Status s) {
              Check(s.ok() == (*remaining == 0), "streaming ReadBytes ended wrongly");
            });
        break;
      }
      case 4:
        stream->ReadUntilClose([&](absl::StatusOr<std::string> r) {
          if (r.ok()) {
            consume(*r);
            if (m.peer_closed && !m.stream_closed_by_us) {
              Check(available() == 0, "ReadUntilClose missed bytes sent before EOF");
            }
          } else {
            Check(r.status().code() == absl::StatusCode::kResourceExhausted
                      ? stream->ReadBufferSize() >= options.max_buffer_size
                      : true,
                  "ReadUntilClose reported a full buffer that was not");
          }
        });
        break;
      case 5:
        stream->ReadUntilClose([&](absl::string_view chunk) { consume(chunk); },
                               [&](absl::Status s) {
                                 if (s.ok() && m.peer_closed && !m.stream_closed_by_us) {
                                   Check(available() == 0, "streaming ReadUntilClose missed bytes");
                                 }
                               });
        break;
    }
  };

  auto peer_read = [&] {
    const std::string got = net_testing::ReadAvailable(peer);
    m.received += got;
    Check(m.written.compare(0, m.received.size(), m.received) == 0,
          "the peer received bytes the stream did not write, or out of order");
  };

  while (!in.done()) {
    switch (in.Below(8)) {
      case 0: {  // The peer writes.
        if (m.peer_closed) break;
        std::string chunk(in.Below(64), 'a');
        for (char& c : chunk) c = kAlphabet[in.Below(4)];
        const ssize_t n = send(peer, chunk.data(), chunk.size(), MSG_NOSIGNAL);
        if (n > 0) m.sent.append(chunk, 0, static_cast<size_t>(n));
        break;
      }
      case 1:
        start_read(in.Byte(), in.Byte(), in.Byte());
        break;
      case 2:
      case 3:
        t.RunOnce();
        break;
      case 4:  // The peer half-closes, at whatever byte it got to.
        if (!m.peer_closed) shutdown(peer, SHUT_WR);
        m.peer_closed = true;
        break;
      case 5: {  // The stream writes a burst.
        const std::string data(in.Below(200), static_cast<char>('A' + in.Below(26)));
        ++m.writes_pending;
        if (stream->Write(data, [&](absl::Status) { --m.writes_pending; }).ok()) {
          m.written += data;
        } else {
          --m.writes_pending;  // Refused: its callback never runs.
        }
        break;
      }
      case 6:
        peer_read();
        break;
      case 7:
        if (in.Below(4) == 0) {
          stream->Close();
          m.stream_closed_by_us = true;
        }
        break;
    }
  }

  // Wind down: the peer half-closes and reads; nothing may hang.
  if (!m.peer_closed) shutdown(peer, SHUT_WR);
  m.peer_closed = true;
  for (int i = 0; i < 10000 && !(stream->Closed() && m.close_callbacks == 1 && !stream->Reading() &&
                                 m.writes_pending == 0);
       ++i) {
    if (!stream->Reading() && !stream->Closed()) start_read(5, 0, 0);
    t.RunOnce();
    peer_read();
  }
  peer_read();  // The stream may have closed before the loop above ran at all.
  Check(stream->Closed(), "the stream never saw the peer's EOF");
  Check(m.close_callbacks == 1, "the close callback did not run exactly once");
  Check(!stream->Reading(), "a read was never resolved");
  Check(m.writes_pending == 0, "a write callback never ran");
  if (!m.stream_closed_by_us) Check(m.received == m.written, "accepted writes were lost");
  stream.reset();
  close(peer);
}

}  // namespace
}  // namespace ioloop::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ioloop::fuzz::FuzzInput in(data, size);
  ioloop::fuzz::Run(in);
  return 0;
}
