// TCPServer, BindSockets and AddAcceptHandler on every backend.

#include "net/tcp_server.h"

#include <sys/resource.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "net/testing/net_test_loop.h"

namespace ioloop {
namespace {

using net_testing::ConnectTo;
using net_testing::NetTestLoop;

class TCPServerTest : public ::testing::TestWithParam<std::string> {
 protected:
  TCPServerTest() : t_(GetParam()) {}
  NetTestLoop t_;
};

INSTANTIATE_TEST_SUITE_P(Backends, TCPServerTest, ::testing::ValuesIn(net_testing::Backends()),
                         [](const auto& info) { return info.param; });

TEST_P(TCPServerTest, HandsEachConnectionOverAsAStream) {
  std::vector<std::unique_ptr<IOStream>> streams;
  std::vector<std::string> peers;
  TCPServer server(t_.loop(), [&](std::unique_ptr<IOStream> s, const SocketAddress& peer) {
    peers.push_back(peer.Host());
    streams.push_back(std::move(s));
  });
  ASSERT_TRUE(server.Listen(0).ok());
  ASSERT_GT(server.Port(), 0);
  std::vector<int> clients;
  for (int i = 0; i < 5; ++i) clients.push_back(ConnectTo(server.Port()));
  ASSERT_TRUE(t_.RunUntil([&] { return streams.size() == 5; }));
  EXPECT_EQ(server.stats().accepted, 5u);
  for (const std::string& p : peers) EXPECT_EQ(p, "127.0.0.1");
  ASSERT_TRUE(streams[0]->Write("hi").ok());
  // On io_uring's completion path the send goes with the loop's next poll.
  ASSERT_TRUE(t_.RunUntil([&] { return !streams[0]->Writing(); }));
  char buf[2];
  // Which client got stream 0 is not known; each stream is one connection.
  bool got = false;
  for (int c : clients) {
    if (recv(c, buf, 2, MSG_DONTWAIT) == 2) got = true;
  }
  EXPECT_TRUE(got);
  for (int c : clients) close(c);
}

TEST_P(TCPServerTest, StopClosesTheListenerButNotTheStreams) {
  std::unique_ptr<IOStream> stream;
  TCPServer server(
      t_.loop(), [&](std::unique_ptr<IOStream> s, const SocketAddress&) { stream = std::move(s); });
  ASSERT_TRUE(server.Listen(0).ok());
  const int port = server.Port();
  const int client = ConnectTo(port);
  ASSERT_TRUE(t_.RunUntil([&] { return stream != nullptr; }));
  server.Stop();
  EXPECT_TRUE(server.Sockets().empty());
  EXPECT_EQ(ConnectTo(port), -1) << "nobody listens any more";
  ASSERT_TRUE(stream->Write("still here").ok());
  ASSERT_TRUE(t_.RunUntil([&] { return !stream->Writing(); }));  // As above.
  char buf[16];
  EXPECT_EQ(recv(client, buf, sizeof buf, 0), 10);
  close(client);
}

TEST_P(TCPServerTest, StopFromInsideHandleStream) {
  int handled = 0;
  std::vector<std::unique_ptr<IOStream>> streams;
  TCPServer* server_ptr = nullptr;
  TCPServer server(t_.loop(), [&](std::unique_ptr<IOStream> s, const SocketAddress&) {
    ++handled;
    streams.push_back(std::move(s));
    server_ptr->Stop();
  });
  server_ptr = &server;
  ASSERT_TRUE(server.Listen(0).ok());
  const int a = ConnectTo(server.Port());
  const int b = ConnectTo(server.Port());  // Both wait in the backlog.
  ASSERT_TRUE(t_.RunUntil([&] { return handled > 0; }));
  for (int i = 0; i < 5; ++i) t_.RunOnce();
  EXPECT_EQ(handled, 1) << "no accept after Stop()";
  close(a);
  close(b);
}

TEST_P(TCPServerTest, IPv6Loopback) {
  std::unique_ptr<IOStream> stream;
  std::string host;
  TCPServer server(t_.loop(), [&](std::unique_ptr<IOStream> s, const SocketAddress& peer) {
    host = peer.ToString();
    stream = std::move(s);
  });
  absl::Status s = server.Listen(0, "::1");
  if (!s.ok()) GTEST_SKIP() << "no IPv6 loopback here: " << s;
  const int client = ConnectTo(server.Port(), "::1");
  ASSERT_GE(client, 0);
  ASSERT_TRUE(t_.RunUntil([&] { return stream != nullptr; }));
  EXPECT_EQ(host.rfind("[::1]:", 0), 0u) << host;
  close(client);
}

TEST(BindSocketsTest, ErrorsNameTheAddress) {
  EXPECT_EQ(BindSockets(70000).status().code(), absl::StatusCode::kInvalidArgument);
  absl::Status unknown = BindSockets(0, "no-such-host.invalid").status();
  EXPECT_EQ(unknown.code(), absl::StatusCode::kNotFound);
  EXPECT_NE(unknown.message().find("no-such-host.invalid"), std::string::npos) << unknown;
  auto first = BindSockets(0);
  ASSERT_TRUE(first.ok());
  const int port = LocalAddress(first->front())->Port();
  absl::Status in_use = BindSockets(port).status();
  EXPECT_FALSE(in_use.ok());
  EXPECT_NE(in_use.message().find("bind 127.0.0.1:" + std::to_string(port)), std::string::npos)
      << in_use;
  close(first->front());
}

TEST(BindSocketsTest, SocketsAreNonBlockingCloseOnExecAndReuseAddr) {
  auto fds = BindSockets(0, "127.0.0.1", 16, /*reuse_port=*/true);
  ASSERT_TRUE(fds.ok()) << fds.status();
  ASSERT_EQ(fds->size(), 1u);
  const int fd = fds->front();
  EXPECT_TRUE(fcntl(fd, F_GETFL) & O_NONBLOCK);
  EXPECT_TRUE(fcntl(fd, F_GETFD) & FD_CLOEXEC);
  int value = 0;
  socklen_t len = sizeof value;
  getsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &value, &len);
  EXPECT_EQ(value, 1);
  // reuse_port: a second socket may bind the same port.
  auto second = BindSockets(LocalAddress(fd)->Port(), "127.0.0.1", 16, true);
  EXPECT_TRUE(second.ok()) << second.status();
  if (second.ok()) close(second->front());
  close(fd);
}

// Out of fds: the accept handler drops what it cannot take (reserve-fd trick) and
// does not leave the listener readable.
TEST(AcceptHandlerTest, SurvivesEmfileByDroppingConnections) {
  NetTestLoop t("fake");
  auto fds = BindSockets(0, "127.0.0.1", 64);
  ASSERT_TRUE(fds.ok());
  const int listener = fds->front();
  const int port = LocalAddress(listener)->Port();
  AcceptStats stats;
  AcceptOptions options;
  options.stats = &stats;
  std::vector<int> accepted;
  auto remover = AddAcceptHandler(
      t.loop(), listener, [&](int fd, const SocketAddress&) { accepted.push_back(fd); }, options);
  ASSERT_TRUE(remover.ok());
  std::vector<int> clients;
  for (int i = 0; i < 20; ++i) clients.push_back(ConnectTo(port));
  // Leave room for exactly 5 more fds (the reserve is already open).
  int probe = dup(0);
  rlimit old;
  getrlimit(RLIMIT_NOFILE, &old);
  rlimit low = old;
  low.rlim_cur = static_cast<rlim_t>(probe + 5);
  close(probe);
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
  for (int i = 0; i < 10; ++i) t.RunOnce();
  setrlimit(RLIMIT_NOFILE, &old);
  EXPECT_GT(stats.dropped_for_fd_limit, 0u);
  EXPECT_EQ(stats.accepted + stats.dropped_for_fd_limit, 20u);
  pollfd p = {listener, POLLIN, 0};
  EXPECT_EQ(poll(&p, 1, 0), 0) << "nothing left pending: the listener does not spin";
  (*remover)();
  for (int fd : accepted) close(fd);
  for (int c : clients) close(c);
  close(listener);
}

}  // namespace
}  // namespace ioloop
