// Stream awaitables (coro/stream.h) on loopback sockets, on the fake poller (real
// readiness injected, fake clock) and on every real backend of this build.

#include "coro/stream.h"

#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "coro/coro.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "net/iostream.h"
#include "net/testing/net_test_loop.h"

namespace ioloop::coro {
namespace {

using net_testing::NetTestLoop;
using ::testing::ElementsAre;

class CoroStreamTest : public ::testing::TestWithParam<std::string> {
 protected:
  CoroStreamTest() : t_(GetParam()) {}
  IOLoop& loop() { return *t_.loop(); }
  NetTestLoop t_;
};

Task<> EchoLines(IOStream* stream, int lines) {
  for (int i = 0; i < lines; ++i) {
    absl::StatusOr<std::string> line = co_await ReadUntil(*stream, "\n", 1024);
    if (!line.ok()) co_return;
    if (!(co_await Write(*stream, *line)).ok()) co_return;
  }
}

TEST_P(CoroStreamTest, EchoRoundTrips) {
  auto [server_fd, client_fd] = net_testing::TcpPair();
  IOStream server(&loop(), server_fd);
  IOStream client(&loop(), client_fd);
  Spawn(loop(), EchoLines(&server, 3));
  auto body = [](IOStream* client) -> Task<std::vector<std::string>> {
    std::vector<std::string> replies;
    for (int i = 0; i < 3; ++i) {
      absl::Status wrote = co_await Write(*client, absl::StrCat("ping ", i, "\n"));
      EXPECT_TRUE(wrote.ok()) << wrote;
      absl::StatusOr<std::string> reply = co_await ReadUntil(*client, "\n");
      replies.push_back(reply.ok() ? *reply : reply.status().ToString());
    }
    co_return replies;
  };
  EXPECT_THAT(RunSync(loop(), body(&client), absl::Seconds(20)),
              ElementsAre("ping 0\n", "ping 1\n", "ping 2\n"));
}

TEST_P(CoroStreamTest, EveryReadForm) {
  auto [stream_fd, peer] = net_testing::SocketPair();
  IOStream stream(&loop(), stream_fd);
  ASSERT_TRUE(net_testing::WriteAll(peer, "abcdefghij"));
  auto body = [](IOStream* s, int peer) -> Task<std::vector<std::string>> {
    std::vector<std::string> got;
    auto show = [](const absl::StatusOr<std::string>& r) {
      return r.ok() ? *r : r.status().ToString();
    };
    got.push_back(show(co_await ReadBytes(*s, 3)));
    got.push_back(show(co_await ReadBytes(*s, 100, /*partial=*/true)));
    EXPECT_TRUE(net_testing::WriteAll(peer, "wxyz1234"));
    std::string chunks;
    absl::Status done = co_await ReadBytes(
        *s, 4, [&chunks](absl::string_view c) { chunks.append(c.data(), c.size()); });
    got.push_back(done.ok() ? chunks : done.ToString());
    got.push_back(show(co_await ReadUntil(*s, "3")));
    EXPECT_TRUE(net_testing::WriteAll(peer, "tail"));
    shutdown(peer, SHUT_WR);
    std::string rest;
    done = co_await ReadUntilClose(
        *s, [&rest](absl::string_view c) { rest.append(c.data(), c.size()); });
    got.push_back(done.ok() ? rest : done.ToString());
    co_return got;
  };
  EXPECT_THAT(RunSync(loop(), body(&stream, peer), absl::Seconds(20)),
              ElementsAre("abc", "defghij", "wxyz", "123", "4tail"));
  close(peer);
}

TEST_P(CoroStreamTest, ReadUntilCloseWholeResult) {
  auto [stream_fd, peer] = net_testing::SocketPair();
  IOStream stream(&loop(), stream_fd);
  ASSERT_TRUE(net_testing::WriteAll(peer, "all of it"));
  close(peer);
  auto body = [](IOStream* s) -> Task<absl::StatusOr<std::string>> {
    co_return co_await ReadUntilClose(*s);
  };
  absl::StatusOr<std::string> all = RunSync(loop(), body(&stream), absl::Seconds(20));
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ(*all, "all of it");
}

TEST_P(CoroStreamTest, WithTimeoutCancelsAPendingReadUntilAndClosesTheStream) {
  auto [stream_fd, peer] = net_testing::SocketPair();
  IOStream stream(&loop(), stream_fd);
  auto inner = [](IOStream* s) -> Task<> {
    (void)co_await ReadUntil(*s, "\n");
    ADD_FAILURE() << "the read completed";
  };
  auto outer = [](IOStream* s, Task<> (*inner)(IOStream*)) -> Task<bool> {
    try {
      co_await WithTimeout(absl::Milliseconds(50), inner(s));
    } catch (const TimeoutError&) {
      co_return true;
    }
    co_return false;
  };
  EXPECT_TRUE(RunSync(loop(), outer(&stream, +inner), absl::Seconds(20)));
  EXPECT_TRUE(stream.Closed());
  EXPECT_EQ(stream.Error().code(), absl::StatusCode::kCancelled) << stream.Error();
  // The read's completion (with the close reason) is delivered to nobody.
  t_.RunFor(absl::Milliseconds(10));
  close(peer);
}

TEST_P(CoroStreamTest, WriteOverTheLimitFailsWithoutSuspending) {
  auto [stream_fd, peer] = net_testing::SocketPair();
  IOStream::Options options;
  options.max_write_buffer_size = 16;
  IOStream stream(&loop(), stream_fd, options);
  auto body = [](IOStream* s) -> Task<absl::Status> {
    co_return co_await Write(*s, absl::Cord(std::string(1 << 20, 'x')));
  };
  EXPECT_EQ(RunSync(loop(), body(&stream), absl::Seconds(20)).code(),
            absl::StatusCode::kResourceExhausted);
  close(peer);
}

TEST_P(CoroStreamTest, ConnectThenWrite) {
  const int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(listen(listener, 4), 0);
  socklen_t len = sizeof addr;
  getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len);
  const int port = ntohs(addr.sin_port);
  auto body = [](IOLoop* loop, int port) -> Task<absl::Status> {
    absl::StatusOr<std::unique_ptr<IOStream>> s = co_await Connect(*loop, "127.0.0.1", port);
    if (!s.ok()) co_return s.status();
    co_return co_await Write(**s, "hi\n");
  };
  absl::Status wrote = RunSync(loop(), body(&loop(), port), absl::Seconds(20));
  EXPECT_TRUE(wrote.ok()) << wrote;
  const int accepted = accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
  ASSERT_GE(accepted, 0);
  char buf[8] = {};
  EXPECT_EQ(recv(accepted, buf, sizeof buf, MSG_WAITALL), 3);
  EXPECT_STREQ(buf, "hi\n");
  close(accepted);
  close(listener);

  // Nobody listens there any more: the await gives the error.
  absl::Status refused = RunSync(loop(), body(&loop(), port), absl::Seconds(20));
  EXPECT_FALSE(refused.ok());
}

TEST_P(CoroStreamTest, CloseDestroysATaskThatOwnsAStreamAndAwaitsARead) {
  auto [stream_fd, peer] = net_testing::SocketPair();
  bool destroyed = false;
  struct Flag {
    bool* f;
    ~Flag() { *f = true; }
  };
  auto body = [](std::unique_ptr<IOStream> s, bool* destroyed) -> Task<> {
    Flag flag{destroyed};
    (void)co_await ReadUntil(*s, "\n");
    ADD_FAILURE() << "resumed after Close";
  };
  Spawn(loop(), body(std::make_unique<IOStream>(&loop(), stream_fd), &destroyed));
  t_.RunFor(absl::Milliseconds(5));
  EXPECT_FALSE(destroyed);
  ASSERT_TRUE(loop().Close().ok());
  EXPECT_TRUE(destroyed);
  // The stream went with the frame, closing its fd: the peer sees EOF.
  char c;
  EXPECT_EQ(recv(peer, &c, 1, 0), 0);
  close(peer);
}

INSTANTIATE_TEST_SUITE_P(Backends, CoroStreamTest, ::testing::ValuesIn(net_testing::Backends()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace ioloop::coro
