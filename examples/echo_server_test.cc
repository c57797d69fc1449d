#include "examples/echo_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "net/testing/net_test_loop.h"

namespace ioloop::examples {
namespace {

// Runs an echo server on a loop thread; the test thread is the client.
class EchoServerTest : public ::testing::Test {
 protected:
  void StartServer(EchoServerOptions options = {}) {
    auto server = EchoServer::Listen(&loop_, options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    thread_ = std::thread([this] { loop_.Start(); });
  }
  void TearDown() override {
    if (thread_.joinable()) {
      loop_.Stop();
      thread_.join();
    }
    server_.reset();
  }

  // Runs `f` on the loop thread and waits for it.
  template <typename T>
  T OnLoop(std::function<T()> f) {
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    T result{};
    loop_.AddCallback([&] {
      T r = f();
      std::lock_guard<std::mutex> lock(mu);
      result = r;
      done = true;
      cv.notify_all();
    });
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return done; });
    return result;
  }

  // Waits (up to 10 s) until the server has closed every connection.
  bool WaitForNoConnections() {
    for (int i = 0; i < 10000; ++i) {
      if (OnLoop<size_t>([this] { return server_->open_connections(); }) == 0) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return false;
  }

  int Connect() {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr = {};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(server_->port()));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    return fd;
  }

  static bool ReadExactly(int fd, std::string& out, size_t n) {
    out.resize(n);
    size_t got = 0;
    while (got < n) {
      const ssize_t r = read(fd, out.data() + got, n - got);
      if (r <= 0) return false;
      got += static_cast<size_t>(r);
    }
    return true;
  }

  IOLoop loop_;
  std::unique_ptr<EchoServer> server_;
  std::thread thread_;
};

TEST_F(EchoServerTest, EchoesEveryMessageOnManyConnections) {
  StartServer();
  constexpr int kClients = 20;
  constexpr int kMessages = 100;
  std::vector<int> fds;
  for (int i = 0; i < kClients; ++i) fds.push_back(Connect());
  for (int m = 0; m < kMessages; ++m) {
    for (int i = 0; i < kClients; ++i) {
      std::string msg(64, static_cast<char>('a' + (i + m) % 26));
      ASSERT_EQ(write(fds[i], msg.data(), msg.size()), 64);
      std::string back;
      ASSERT_TRUE(ReadExactly(fds[i], back, 64));
      ASSERT_EQ(back, msg);
    }
  }
  for (int fd : fds) close(fd);
  EXPECT_TRUE(WaitForNoConnections());
  EXPECT_EQ(OnLoop<uint64_t>([this] { return server_->bytes_echoed(); }),
            static_cast<uint64_t>(kClients * kMessages * 64));
}

TEST_F(EchoServerTest, ClientThatNeverReadsGetsBackPressureNotUnboundedBuffering) {
  EchoServerOptions options;
  options.max_buffered_bytes = 16 * 1024;
  StartServer(options);
  const int fd = Connect();
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  // Send until the kernel pushes back: the server must have stopped reading.
  std::string chunk(4096, 'x');
  size_t sent = 0;
  for (int stalls = 0; stalls < 50;) {
    const ssize_t n = write(fd, chunk.data(), chunk.size());
    if (n > 0) {
      sent += static_cast<size_t>(n);
      stalls = 0;
    } else {
      ASSERT_TRUE(errno == EAGAIN || errno == EWOULDBLOCK);
      pollfd p{fd, POLLOUT, 0};
      if (poll(&p, 1, 20) == 0) ++stalls;  // Still full after 20 ms: it is pushing back.
    }
  }
  EXPECT_GT(sent, options.max_buffered_bytes) << "more than the cap was sent";
  EXPECT_LE(OnLoop<size_t>([this] { return server_->peak_buffered_bytes(); }),
            options.max_buffered_bytes);
  // Nothing is lost: read everything back.
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  std::string back;
  ASSERT_TRUE(ReadExactly(fd, back, sent));
  EXPECT_EQ(back, std::string(sent, 'x'));
  close(fd);
}

TEST_F(EchoServerTest, HalfCloseEchoesTheRestThenCloses) {
  StartServer();
  const int fd = Connect();
  ASSERT_EQ(write(fd, "hello", 5), 5);
  ASSERT_EQ(shutdown(fd, SHUT_WR), 0);
  std::string all;
  char buf[64];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) all.append(buf, static_cast<size_t>(n));
  EXPECT_EQ(n, 0) << "the server closes after echoing";
  EXPECT_EQ(all, "hello");
  close(fd);
  EXPECT_TRUE(WaitForNoConnections());
}

TEST_F(EchoServerTest, PeerResetMidStreamDoesNotHurtOthers) {
  StartServer();
  for (int i = 0; i < 20; ++i) {
    const int fd = Connect();
    std::string data(256 * 1024, 'r');
    ASSERT_GT(write(fd, data.data(), data.size()), 0);
    linger hard = {1, 0};  // close() sends RST.
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
    close(fd);
  }
  EXPECT_TRUE(WaitForNoConnections());
  const int fd = Connect();
  ASSERT_EQ(write(fd, "still here", 10), 10);
  std::string back;
  ASSERT_TRUE(ReadExactly(fd, back, 10));
  EXPECT_EQ(back, "still here");
  close(fd);
}

// Slowloris: a client that connects and sends nothing is dropped after the idle
// timeout; an active one is not. On the fake clock: zero real time.
TEST(EchoServerIdleTest, IdleClientsAreDroppedActiveOnesAreNot) {
  net_testing::NetTestLoop t("fake");
  EchoServerOptions options;
  options.idle_timeout = absl::Seconds(60);
  auto server = EchoServer::Listen(t.loop(), options);
  ASSERT_TRUE(server.ok()) << server.status();
  const int idle = net_testing::ConnectTo((*server)->port());
  const int active = net_testing::ConnectTo((*server)->port());
  ASSERT_TRUE(t.RunUntil([&] { return (*server)->open_connections() == 2; }));
  for (int i = 0; i < 5; ++i) {
    t.RunFor(absl::Seconds(20));
    ASSERT_TRUE(net_testing::WriteAll(active, "ping"));
    std::string got;
    ASSERT_TRUE(t.RunUntil([&] {
      got += net_testing::ReadAvailable(active);
      return got == "ping";
    }));
  }
  EXPECT_EQ((*server)->open_connections(), 1u);
  EXPECT_EQ((*server)->dropped_idle(), 1u);
  char c;
  EXPECT_EQ(read(idle, &c, 1), 0) << "the idle client was closed";
  close(idle);
  close(active);
}

TEST(EchoServerListenTest, BadAddressIsAClearError) {
  IOLoop loop;
  EchoServerOptions options;
  options.host = "not-an-address";
  auto server = EchoServer::Listen(&loop, options);
  EXPECT_EQ(server.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(server.status().message().find("not-an-address"), absl::string_view::npos);
}

TEST(EchoServerListenTest, DefaultsToLoopback) {
  IOLoop loop;
  auto server = EchoServer::Listen(&loop, {});
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_EQ(EchoServerOptions().host, "127.0.0.1");
  EXPECT_GT((*server)->port(), 0);
}

}  // namespace
}  // namespace ioloop::examples
