#include "examples/multi_loop_echo_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace ioloop::examples {
namespace {

int Connect(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  return fd;
}

std::string Echo(int fd, const std::string& message) {
  EXPECT_EQ(write(fd, message.data(), message.size()), static_cast<ssize_t>(message.size()));
  std::string got;
  char buf[4096];
  while (got.size() < message.size()) {
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
  }
  return got;
}

class MultiLoopEchoServerTest : public ::testing::TestWithParam<MultiLoopMode> {};

// Two loops, eight connections open at once, each echoing 64 KiB in pieces: every
// byte comes back to the connection that sent it, and each loop's counts add up.
TEST_P(MultiLoopEchoServerTest, EchoesEveryByteAcrossLoops) {
  LoopThreadPool pool(2);
  ASSERT_TRUE(pool.Start().ok());
  EchoServerOptions options;
  options.port = 0;
  auto server = MultiLoopEchoServer::Listen(&pool, options, GetParam());
  ASSERT_TRUE(server.ok()) << server.status();
  std::vector<int> fds;
  for (int c = 0; c < 8; ++c) fds.push_back(Connect((*server)->port()));
  uint64_t sent = 0;
  for (int round = 0; round < 16; ++round) {
    for (size_t c = 0; c < fds.size(); ++c) {
      const std::string message =
          absl::StrCat(c, ":", round, ":", std::string(4096 - 8, static_cast<char>('a' + c)));
      EXPECT_EQ(Echo(fds[c], message), message);
      sent += message.size();
    }
  }
  for (int fd : fds) close(fd);
  const std::vector<uint64_t> connections = (*server)->ConnectionsPerLoop();
  EXPECT_EQ(connections[0] + connections[1], 8u);
  if (GetParam() == MultiLoopMode::kHandoff) {
    EXPECT_EQ(connections, (std::vector<uint64_t>{4, 4}));
  }
  const std::vector<uint64_t> bytes = (*server)->BytesEchoedPerLoop();
  EXPECT_EQ(bytes[0] + bytes[1], sent);
  (*server)->Shutdown();
  EXPECT_TRUE((*server)->BytesEchoedPerLoop().empty());
  pool.Stop();
  pool.Join();
}

INSTANTIATE_TEST_SUITE_P(Modes, MultiLoopEchoServerTest,
                         ::testing::Values(MultiLoopMode::kReusePort, MultiLoopMode::kHandoff),
                         [](const auto& info) {
                           return std::string(MultiLoopModeName(info.param));
                         });

}  // namespace
}  // namespace ioloop::examples
