// CoroEchoServer on the fake poller (real loopback sockets, fake clock) and on every
// real backend; clients are coroutines on the same loop.

#include "examples/coro_echo_server.h"

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "coro/coro.h"
#include "coro/stream.h"
#include "gtest/gtest.h"
#include "net/testing/net_test_loop.h"

namespace ioloop::examples {
namespace {

class CoroEchoServerTest : public ::testing::TestWithParam<std::string> {
 protected:
  CoroEchoServerTest() : t_(GetParam()) {}
  void StartServer(EchoServerOptions options = {}) {
    auto server = CoroEchoServer::Listen(t_.loop(), options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
  }
  IOLoop& loop() { return *t_.loop(); }
  net_testing::NetTestLoop t_;
  std::unique_ptr<CoroEchoServer> server_;
};

coro::Task<std::string> Client(IOLoop* loop, int port, int lines) {
  auto stream = co_await coro::Connect(*loop, "127.0.0.1", port);
  if (!stream.ok()) co_return stream.status().ToString();
  std::string got;
  for (int i = 0; i < lines; ++i) {
    (void)co_await coro::Write(**stream, absl::StrCat("line ", i, "\n"));
    absl::StatusOr<std::string> echo = co_await coro::ReadUntil(**stream, "\n");
    if (!echo.ok()) co_return echo.status().ToString();
    got += *echo;
  }
  co_return got;
}

TEST_P(CoroEchoServerTest, EchoesEveryLine) {
  StartServer();
  EXPECT_EQ(coro::RunSync(loop(), Client(&loop(), server_->port(), 3), absl::Seconds(20)),
            "line 0\nline 1\nline 2\n");
  EXPECT_EQ(server_->stats().accepted, 1u);
  EXPECT_EQ(server_->stats().bytes_echoed, 21u);
}

TEST_P(CoroEchoServerTest, ManyClientsAtOnce) {
  StartServer();
  auto all = [](IOLoop* loop, int port) -> coro::Task<int> {
    std::vector<coro::Task<std::string>> clients;
    for (int i = 0; i < 20; ++i) clients.push_back(Client(loop, port, 5));
    // Spawned clients run concurrently; count the complete replies.
    auto ok = std::make_shared<int>(0);
    for (auto& c : clients) {
      coro::Spawn(*loop, [](coro::Task<std::string> c, std::shared_ptr<int> ok) -> coro::Task<> {
        if ((co_await std::move(c)).size() == 35) ++*ok;
      }(std::move(c), ok));
    }
    while (*ok < 20) co_await coro::Sleep(absl::Milliseconds(1));
    co_return *ok;
  };
  EXPECT_EQ(coro::RunSync(loop(), all(&loop(), server_->port()), absl::Seconds(20)), 20);
  EXPECT_EQ(server_->stats().accepted, 20u);
}

TEST_P(CoroEchoServerTest, DropsIdleClients) {
  if (!t_.fake()) GTEST_SKIP() << "idle timeouts are tested on the fake clock";
  EchoServerOptions options;
  options.idle_timeout = absl::Seconds(5);
  StartServer(options);
  auto idle = [](IOLoop* loop, int port) -> coro::Task<absl::Status> {
    auto stream = co_await coro::Connect(*loop, "127.0.0.1", port);
    if (!stream.ok()) co_return stream.status();
    absl::StatusOr<std::string> eof = co_await coro::ReadUntilClose(**stream);
    co_return eof.status();
  };
  EXPECT_TRUE(coro::RunSync(loop(), idle(&loop(), server_->port()), absl::Seconds(20)).ok());
  EXPECT_EQ(server_->stats().dropped_idle, 1u);
  t_.RunFor(absl::Milliseconds(1));
  EXPECT_EQ(server_->stats().open_connections, 0u);
}

TEST_P(CoroEchoServerTest, DestroyingTheServerClosesConnections) {
  StartServer();
  auto open = [](IOLoop* loop, int port) -> coro::Task<std::unique_ptr<IOStream>> {
    auto stream = co_await coro::Connect(*loop, "127.0.0.1", port);
    EXPECT_TRUE(stream.ok());
    (void)co_await coro::Write(**stream, "x");
    (void)co_await coro::ReadBytes(**stream, 1);
    co_return *std::move(stream);
  };
  std::unique_ptr<IOStream> client =
      coro::RunSync(loop(), open(&loop(), server_->port()), absl::Seconds(20));
  ASSERT_NE(client, nullptr);
  EXPECT_EQ(server_->stats().open_connections, 1u);
  server_.reset();
  auto eof = [](IOStream* s) -> coro::Task<absl::Status> {
    co_return (co_await coro::ReadUntilClose(*s)).status();
  };
  EXPECT_TRUE(coro::RunSync(loop(), eof(client.get()), absl::Seconds(20)).ok());
}

INSTANTIATE_TEST_SUITE_P(Backends, CoroEchoServerTest, ::testing::ValuesIn(net_testing::Backends()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace ioloop::examples
