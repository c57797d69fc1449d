// The coroutine chat server with real loopback clients, on the fake poller (real sockets).

#include "examples/coro_chat_server.h"

#include <unistd.h>

#include <string>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "net/testing/net_test_loop.h"

namespace ioloop::examples {
namespace {

using net_testing::ConnectTo;
using net_testing::ReadAvailable;
using net_testing::WriteAll;

class CoroChatServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ChatServerOptions options;
    options.max_queued_bytes = 64 * 1024;
    auto server = CoroChatServer::Listen(t_.loop(), options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
  }

  struct Peer {
    int fd;
    std::string seen;
  };
  Peer Join() {
    const size_t before = server_->clients();
    Peer p{ConnectTo(server_->port()), ""};
    EXPECT_TRUE(t_.RunUntil([&] { return server_->clients() == before + 1; }));
    return p;
  }
  // Runs the loop until `p` has seen `text`.
  bool Sees(Peer& p, const std::string& text) {
    return t_.RunUntil([&] {
      p.seen += ReadAvailable(p.fd);
      return absl::StrContains(p.seen, text);
    });
  }

  net_testing::NetTestLoop t_{"fake"};
  std::unique_ptr<CoroChatServer> server_;
};

TEST_F(CoroChatServerTest, NickBroadcastAndQuit) {
  Peer a = Join(), b = Join(), c = Join();
  EXPECT_TRUE(Sees(a, "* guest2 joined"));
  ASSERT_TRUE(WriteAll(a.fd, "/nick alice\n"));
  EXPECT_TRUE(Sees(a, "* you are now alice"));
  EXPECT_TRUE(Sees(b, "* guest1 is now alice"));
  ASSERT_TRUE(WriteAll(b.fd, "/nick bob\r\n"));
  EXPECT_TRUE(Sees(b, "* you are now bob"));
  ASSERT_TRUE(WriteAll(a.fd, "hello room\n"));
  EXPECT_TRUE(Sees(b, "<alice> hello room\n"));
  EXPECT_TRUE(Sees(c, "<alice> hello room\n"));
  EXPECT_FALSE(absl::StrContains(a.seen, "<alice>")) << "no echo to the sender";
  ASSERT_TRUE(WriteAll(b.fd, "/quit\n"));
  EXPECT_TRUE(Sees(b, "* bye\n"));
  EXPECT_TRUE(Sees(a, "* bob left\n"));
  char ch;
  EXPECT_EQ(read(b.fd, &ch, 1), 0) << "the server closed bob's connection";
  EXPECT_EQ(server_->clients(), 2u);
  for (int fd : {a.fd, b.fd, c.fd}) close(fd);
  EXPECT_TRUE(t_.RunUntil([&] { return server_->clients() == 0; }));
}

TEST_F(CoroChatServerTest, AClientThatNeverReadsIsDroppedOthersCarryOn) {
  Peer talker = Join(), reader = Join();
  // The sleeper's kernel buffer is kept small, so the server's queue fills sooner.
  Peer sleeper{socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), ""};
  const int small = 4096;
  setsockopt(sleeper.fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(server_->port()));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(sleeper.fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_TRUE(t_.RunUntil([&] { return server_->clients() == 3; }));
  std::string lines;
  for (int i = 0; i < 64; ++i) lines += std::string(999, 'z') + "\n";
  bool dropped = false;
  for (int i = 0; i < 1000 && !dropped; ++i) {
    ASSERT_TRUE(WriteAll(talker.fd, lines));
    for (int j = 0; j < 4; ++j) t_.RunOnce();
    reader.seen += ReadAvailable(reader.fd);
    if (reader.seen.size() > 100000) reader.seen.erase(0, reader.seen.size() - 100);
    dropped = server_->dropped_slow() == 1;
  }
  EXPECT_TRUE(dropped) << "the sleeper's queue passed 64 KiB";
  EXPECT_TRUE(Sees(reader, "* guest3 left"));
  EXPECT_EQ(server_->clients(), 2u);
  ASSERT_TRUE(WriteAll(talker.fd, "still here\n"));
  EXPECT_TRUE(Sees(reader, "<guest1> still here"));
  for (int fd : {talker.fd, reader.fd, sleeper.fd}) close(fd);
}

TEST_F(CoroChatServerTest, TooLongALineIsRefusedAndTheConnectionEnds) {
  Peer a = Join(), b = Join();
  ASSERT_TRUE(WriteAll(a.fd, std::string(5000, 'x')));
  EXPECT_TRUE(Sees(a, "* line too long\n"));
  shutdown(a.fd, SHUT_WR);
  EXPECT_TRUE(Sees(b, "* guest1 left"));
  EXPECT_EQ(server_->clients(), 1u);
  close(a.fd);
  close(b.fd);
}

}  // namespace
}  // namespace ioloop::examples
