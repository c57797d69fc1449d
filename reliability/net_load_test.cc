// Load and fault tests for the stream layer (net/): a peer that never reads while the
// server writes 100 MB, a flood that never sends the delimiter, half-close at several
// sizes, resets mid-stream, and idle connections giving their buffers back. Each
// prints the figures docs/reliability.md quotes ("FIGURE name=value"). Every case runs
// on the build's default poller and on io_uring (reliability/stream_backends.h).

#include <sys/wait.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "examples/echo_server.h"
#include "gtest/gtest.h"
#include "ioloop/io_loop.h"
#include "net/iostream.h"
#include "net/tcp_server.h"
#include "reliability/load_test_util.h"
#include "reliability/stream_backends.h"

namespace ioloop::reliability {
namespace {

void Figure(const char* name, double value) {
  std::printf("FIGURE %s=%.6g\n", name, value);
  ::testing::Test::RecordProperty(name, std::to_string(value));
}

// VmRssKb(): the resident set now (ru_maxrss is only the peak).
long VmRssKb() {
  std::ifstream status("/proc/self/status");
  std::string key;
  while (status >> key) {
    long value;
    if (key == "VmRSS:" && status >> value) return value;
    status.ignore(1 << 10, '\n');
  }
  return -1;
}

class NetFaultTest : public StreamBackendTest {};
class NetLoadTest : public StreamBackendTest {};

// A server that writes `total` bytes to every client in 1 MiB writes, each waiting for
// the previous one to reach the kernel (the flow-controlled writer), or as fast as
// Write() accepts them (the careless writer, which learns the bound from the status).
TEST_P(NetFaultTest, PeerThatNeverReadsCostsAtMostTheWriteBound) {
  IOLoop& loop = this->loop();
  IOStream::Options options;
  options.max_write_buffer_size = 8 << 20;
  const uint64_t total = 100ull << 20;  // Cheap at any size: the writers stop at the bound.
  const std::string chunk(1 << 20, 'p');
  std::vector<std::unique_ptr<IOStream>> streams;
  uint64_t careless_accepted = 0;
  absl::Status careless_refusal;
  IOStream* flow_stream = nullptr;
  uint64_t flow_sent = 0;
  std::function<void(absl::Status)> flow_next = [&](absl::Status ok) {
    if (!ok.ok() || flow_sent >= total) return;
    flow_sent += chunk.size();
    flow_stream->Write(chunk, [&](absl::Status s) { flow_next(s); }).IgnoreError();
  };
  TCPServer server(
      &loop,
      [&](std::unique_ptr<IOStream> s, const SocketAddress&) {
        IOStream* stream = s.get();
        streams.push_back(std::move(s));
        if (streams.size() == 1) {
          // Flow-controlled: the next megabyte only once the last one is in the kernel.
          flow_stream = stream;
          flow_next(absl::OkStatus());
        } else {
          // Careless: write until the stream says no.
          while (careless_accepted < total) {
            absl::Status s = stream->Write(chunk);
            if (!s.ok()) {
              careless_refusal = s;
              break;
            }
            careless_accepted += chunk.size();
          }
        }
      },
      options);
  ASSERT_TRUE(server.Listen(0).ok());
  const long rss_before = VmRssKb();
  const int a = ConnectLoopback(server.Port(), false);
  const int b = ConnectLoopback(server.Port(), false);
  long rss_peak = 0;
  for (int i = 0; i < 200; ++i) {  // 2 s of serving while nobody reads.
    loop.AddTimeout(absl::Milliseconds(10), [&] { loop.Stop(); });
    loop.Start();
    rss_peak = std::max(rss_peak, VmRssKb());
  }
  ASSERT_EQ(streams.size(), 2u);
  EXPECT_LE(streams[0]->WriteBufferSize(), options.max_write_buffer_size);
  EXPECT_LE(streams[1]->WriteBufferSize(), options.max_write_buffer_size);
  EXPECT_EQ(careless_refusal.code(), absl::StatusCode::kResourceExhausted) << careless_refusal;
  EXPECT_LT(careless_accepted, total) << "the kernel cannot hold 100 MB for a peer";
  const long growth_kb = rss_peak - rss_before;
  // Two streams' write bounds plus one 1 MiB chunk in flight; the rest is slack for
  // the allocator. 100 MB would show.
  // Sanitizers add shadow memory and their own allocator, so RSS says nothing there;
  // the queue bounds above still hold.
  if (kSanitizerDivisor == 1) {
    EXPECT_LT(growth_kb, 2 * 8 * 1024 + 16 * 1024) << "RSS grew by " << growth_kb << " KiB";
  }
  Figure("never_reader_bytes_offered", static_cast<double>(total));
  Figure("never_reader_write_bound_mib", options.max_write_buffer_size / 1048576.0);
  Figure("never_reader_careless_bytes_accepted", static_cast<double>(careless_accepted));
  Figure("never_reader_server_rss_growth_mib", growth_kb / 1024.0);
  close(a);
  close(b);
  streams.clear();
}

// A client that floods without ever sending the delimiter: the read fails with a
// clear status at the bound, the server closes that connection, and serves the next.
TEST_P(NetFaultTest, FloodWithoutDelimiterIsBoundedAndReported) {
  IOLoop& loop = this->loop();
  IOStream::Options options;
  options.max_buffer_size = 1 << 20;
  std::vector<std::unique_ptr<IOStream>> streams;
  std::vector<absl::Status> outcomes;
  size_t peak_buffered = 0;
  TCPServer server(
      &loop,
      [&](std::unique_ptr<IOStream> s, const SocketAddress&) {
        IOStream* stream = s.get();
        streams.push_back(std::move(s));
        stream->ReadUntil(
            "\r\n\r\n",
            [&, stream](absl::StatusOr<std::string> header) {
              peak_buffered = std::max(peak_buffered, stream->ReadBufferSize());
              outcomes.push_back(header.status());
              if (!header.ok()) {
                stream->Close(header.status());  // The server's choice: drop the flooder.
                return;
              }
              stream->Write("HTTP/1.0 200 OK\r\n\r\n", [stream](absl::Status) { stream->Close(); })
                  .IgnoreError();
            },
            /*max_bytes=*/64 * 1024);
      },
      options);
  ASSERT_TRUE(server.Listen(0).ok());
  const int port = server.Port();
  std::atomic<uint64_t> flooded{0};
  std::atomic<bool> flooder_cut_off{false};
  std::string reply;
  std::thread client([&] {
    const int fd = ConnectLoopback(port, false);
    const std::string junk(64 * 1024, 'j');
    for (int i = 0; i < 800; ++i) {  // Up to 50 MB.
      const ssize_t n = send(fd, junk.data(), junk.size(), MSG_NOSIGNAL);
      if (n <= 0) {
        flooder_cut_off = true;
        break;
      }
      flooded += static_cast<uint64_t>(n);
    }
    close(fd);
    const int ok = ConnectLoopback(port, false);
    (void)!send(ok, "GET / HTTP/1.0\r\n\r\n", 18, MSG_NOSIGNAL);
    char buf[64];
    ssize_t n;
    while ((n = read(ok, buf, sizeof buf)) > 0) reply.append(buf, static_cast<size_t>(n));
    close(ok);
    loop.AddCallback([&] { loop.Stop(); });
  });
  loop.AddTimeout(absl::Seconds(50), [&] { loop.Stop(); });
  loop.Start();
  client.join();
  ASSERT_EQ(outcomes.size(), 2u);
  EXPECT_EQ(outcomes[0].code(), absl::StatusCode::kResourceExhausted) << outcomes[0];
  EXPECT_NE(outcomes[0].message().find("max_bytes 65536"), std::string::npos) << outcomes[0];
  EXPECT_TRUE(outcomes[1].ok()) << outcomes[1];
  EXPECT_TRUE(flooder_cut_off.load()) << "the flooder's connection was closed";
  EXPECT_LE(peak_buffered, options.max_buffer_size);
  EXPECT_EQ(reply, "HTTP/1.0 200 OK\r\n\r\n") << "the server went on serving";
  Figure("flood_bytes_sent_before_cut_off", static_cast<double>(flooded.load()));
  Figure("flood_server_bytes_buffered_at_error", static_cast<double>(peak_buffered));
  streams.clear();
}

// The echo server, a client half-closing after N bytes: exactly N bytes come back,
// then EOF.
TEST_P(NetFaultTest, HalfCloseAtEverySizeGetsEverythingBackThenEof) {
  IOLoop& loop = this->loop();
  auto server = examples::EchoServer::Listen(&loop, {});
  ASSERT_TRUE(server.ok());
  const int port = (*server)->port();
  std::thread loop_thread([&] { loop.Start(); });
  for (size_t size : {size_t{0}, size_t{1}, size_t{65535}, size_t{1} << 20}) {
    SCOPED_TRACE(size);
    const int fd = ConnectLoopback(port, false);
    std::string data(size, '\0');
    for (size_t i = 0; i < size; ++i) data[i] = static_cast<char>('a' + i % 23);
    std::thread writer([&] {
      size_t off = 0;
      while (off < size) {
        const ssize_t n = send(fd, data.data() + off, size - off, MSG_NOSIGNAL);
        if (n <= 0) break;
        off += static_cast<size_t>(n);
      }
      shutdown(fd, SHUT_WR);
    });
    std::string back;
    char buf[65536];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) back.append(buf, static_cast<size_t>(n));
    writer.join();
    EXPECT_EQ(n, 0) << "EOF after the echo";
    EXPECT_EQ(back.size(), size);
    EXPECT_TRUE(back == data);
    close(fd);
  }
  Figure("half_close_sizes_checked", 4);
  loop.AddCallback([&] { loop.Stop(); });
  loop_thread.join();
}

// Clients reset their connections (SO_LINGER 0) in the middle of a transfer while
// others echo: the server frees every reset stream and keeps serving.
TEST_P(NetFaultTest, ResetsMidStreamFreeTheConnectionAndHurtNoOne) {
  IOLoop& loop = this->loop();
  auto server = examples::EchoServer::Listen(&loop, {});
  ASSERT_TRUE(server.ok());
  const int port = (*server)->port();
  std::thread loop_thread([&] { loop.Start(); });
  const int resets = 200 / kSanitizerDivisor;
  std::thread resetter([&] {
    const std::string data(256 * 1024, 'r');
    for (int i = 0; i < resets; ++i) {
      const int fd = ConnectLoopback(port, false);
      (void)!send(fd, data.data(), data.size(), MSG_NOSIGNAL);
      linger hard = {1, 0};
      setsockopt(fd, SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
      close(fd);
    }
  });
  EchoClientResult seen = RunEchoClient(port, 50, 200);
  resetter.join();
  // Every reset connection is freed.
  bool all_freed = false;
  for (int i = 0; i < 2000 && !all_freed; ++i) {
    std::atomic<size_t> open{1};
    std::atomic<bool> done{false};
    loop.AddCallback([&] {
      open = (*server)->open_connections();
      done = true;
    });
    while (!done.load()) std::this_thread::yield();
    all_freed = open.load() == 0;
    if (!all_freed) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  loop.AddCallback([&] { loop.Stop(); });
  loop_thread.join();
  EXPECT_EQ(seen.failures, 0);
  EXPECT_EQ(seen.mismatches, 0);
  EXPECT_EQ(seen.bytes_echoed, 50u * 200 * 64);
  EXPECT_TRUE(all_freed) << "reset connections were all closed";
  Figure("resets", resets);
  Figure("bytes_echoed_to_others_meanwhile", static_cast<double>(seen.bytes_echoed));
}

// 1,000 connections each echo a 1 MiB burst and then stay open, idle: the server's
// streams give their buffers back (none held), and its resident memory comes down.
TEST_P(NetLoadTest, IdleConnectionsGiveTheirBuffersBack) {
  RaiseFdLimit();
  const int connections = 1000 / kSanitizerDivisor;
  const size_t burst = 1 << 20;
  IOLoop& loop = this->loop();
  auto server = examples::EchoServer::Listen(&loop, {});
  ASSERT_TRUE(server.ok());
  const int port = (*server)->port();
  int to_child[2], to_parent[2];
  ASSERT_EQ(pipe(to_child), 0);
  ASSERT_EQ(pipe(to_parent), 0);
  const long rss_before = VmRssKb();
  const pid_t pid = fork();
  if (pid == 0) {
    RaiseFdLimit();
    // Burst on every connection (bounded concurrency through the kernel buffers),
    // read it all back, then hold the connections open until told to go.
    std::vector<int> fds;
    for (int i = 0; i < connections; ++i) fds.push_back(ConnectLoopback(port, true));
    std::vector<size_t> sent(fds.size(), 0), got(fds.size(), 0);
    const std::string data(burst, 'i');
    char buf[65536];
    size_t complete = 0;
    while (complete < fds.size()) {
      for (size_t i = 0; i < fds.size(); ++i) {
        if (got[i] == burst) continue;
        if (sent[i] < burst) {
          const ssize_t n = send(fds[i], data.data() + sent[i], burst - sent[i], MSG_NOSIGNAL);
          if (n > 0) sent[i] += static_cast<size_t>(n);
        }
        ssize_t n;
        while ((n = read(fds[i], buf, sizeof buf)) > 0) got[i] += static_cast<size_t>(n);
        if (n == 0) _exit(2);
        if (got[i] == burst) ++complete;
      }
    }
    const char done = 1;
    (void)!write(to_parent[1], &done, 1);
    char go;
    (void)!read(to_child[0], &go, 1);
    _exit(0);
  }
  close(to_parent[1]);
  bool bursts_done = false;
  ASSERT_TRUE(loop.AddHandler(
                      to_parent[0],
                      [&](int fd, EventMask) {
                        char c;
                        (void)!read(fd, &c, 1);
                        bursts_done = true;
                        loop.Stop();
                      },
                      kRead)
                  .ok());
  loop.AddTimeout(absl::Seconds(100), [&] { loop.Stop(); });
  loop.Start();
  ASSERT_TRUE(bursts_done);
  // Let the loop settle once more, then look.
  loop.AddTimeout(absl::Milliseconds(50), [&] { loop.Stop(); });
  loop.Start();
  const long rss_idle = VmRssKb();
  const long rss_peak = PeakRssKb();
  EXPECT_EQ((*server)->open_connections(), static_cast<size_t>(connections));
  EXPECT_EQ((*server)->bytes_echoed(), static_cast<uint64_t>(connections) * burst);
  EXPECT_EQ((*server)->buffer_bytes(), 0u) << "idle streams hold no buffers";
  (void)!write(to_child[1], "g", 1);
  waitpid(pid, nullptr, 0);
  Figure("idle_connections", connections);
  Figure("burst_bytes_each", static_cast<double>(burst));
  Figure("server_buffer_bytes_when_idle", static_cast<double>((*server)->buffer_bytes()));
  Figure("server_rss_before_mib", rss_before / 1024.0);
  Figure("server_rss_peak_mib", rss_peak / 1024.0);
  Figure("server_rss_idle_mib", rss_idle / 1024.0);
  loop.RemoveHandler(to_parent[0]).IgnoreError();
  for (int fd : {to_parent[0], to_child[0], to_child[1]}) close(fd);
}

INSTANTIATE_TEST_SUITE_P(Backends, NetFaultTest, ::testing::ValuesIn(StreamBackends()),
                         StreamBackendName);
INSTANTIATE_TEST_SUITE_P(Backends, NetLoadTest, ::testing::ValuesIn(StreamBackends()),
                         StreamBackendName);

}  // namespace
}  // namespace ioloop::reliability
