#include "net/multi_loop_server.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "loop_thread/loop_thread.h"

namespace ioloop {
namespace {

// LoopEcho: the per-loop half of an echo server; lives on, and is only touched from,
// its loop's thread.
class LoopEcho {
 public:
  explicit LoopEcho(IOLoop* loop) : loop_(loop) {}
  ~LoopEcho() { streams_.clear(); }

  void Serve(std::unique_ptr<IOStream> stream) {
    EXPECT_TRUE(loop_->IsInLoopThread());
    EXPECT_EQ(stream->loop(), loop_);
    IOStream* s = stream.get();
    streams_[s] = std::move(stream);
    s->SetCloseCallback([this, s] { streams_.erase(s); });
    Read(s);
  }
  size_t live() const { return streams_.size(); }

 private:
  void Read(IOStream* s) {
    s->ReadBytes(
        64 * 1024,
        [this, s](absl::StatusOr<std::string> data) {
          if (!data.ok()) return;
          s->Write(*data, [this, s](absl::Status ok) {
             if (ok.ok()) Read(s);
           }).IgnoreError();
        },
        /*partial=*/true);
  }

  IOLoop* const loop_;
  std::unordered_map<IOStream*, std::unique_ptr<IOStream>> streams_;
};

// EchoPool: a pool, a LoopEcho per loop (made and destroyed on its loop), a server.
struct EchoPool {
  EchoPool(int loops, MultiLoopMode mode) : pool(loops) {
    EXPECT_TRUE(pool.Start().ok());
    echoes.resize(pool.size());
    for (size_t i = 0; i < pool.size(); ++i) {
      EXPECT_TRUE(pool.thread(i)
                      .RunAndWait([&, i] { echoes[i] = std::make_unique<LoopEcho>(pool.loop(i)); })
                      .ok());
    }
    MultiLoopServerOptions options;
    options.mode = mode;
    server = std::make_unique<MultiLoopTCPServer>(
        &pool,
        [this](size_t i, std::unique_ptr<IOStream> s, const SocketAddress&) {
          echoes[i]->Serve(std::move(s));
        },
        options);
  }
  // The documented order: stop accepting, tear down per-loop state on each loop, then
  // stop and join the threads.
  void Shutdown() {
    if (shut_down) return;
    shut_down = true;
    server->Stop();
    for (size_t i = 0; i < pool.size(); ++i) {
      EXPECT_TRUE(pool.thread(i).RunAndWait([&, i] { echoes[i].reset(); }).ok());
    }
    pool.Stop();
    pool.Join();
  }
  ~EchoPool() { Shutdown(); }

  LoopThreadPool pool;
  std::vector<std::unique_ptr<LoopEcho>> echoes;
  std::unique_ptr<MultiLoopTCPServer> server;
  bool shut_down = false;
};

int Connect(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  timeval timeout = {30, 0};  // A safety net against a hung test, not synchronisation.
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// RoundTrip() sends `message` and reads it back; false on EOF or error.
bool RoundTrip(int fd, const std::string& message) {
  if (send(fd, message.data(), message.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(message.size()))
    return false;
  std::string got;
  char buf[4096];
  while (got.size() < message.size()) {
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) return false;
    got.append(buf, static_cast<size_t>(n));
  }
  EXPECT_EQ(got, message);
  return got == message;
}

int CountDir(const char* path) {
  DIR* dir = opendir(path);
  int n = 0;
  while (dirent* e = readdir(dir)) n += e->d_name[0] != '.';
  closedir(dir);
  return n;
}

TEST(MultiLoopTCPServerTest, ParsesModes) {
  EXPECT_EQ(*ParseMultiLoopMode("reuseport"), MultiLoopMode::kReusePort);
  EXPECT_EQ(*ParseMultiLoopMode("handoff"), MultiLoopMode::kHandoff);
  EXPECT_EQ(ParseMultiLoopMode("fork").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(MultiLoopModeName(MultiLoopMode::kReusePort), "reuseport");
}

// Handoff: connection k goes to loop k mod n, exactly. Each connection finishes a round
// trip before the next connects, so they are accepted in order.
TEST(MultiLoopTCPServerTest, HandoffIsExactRoundRobinAndEchoesEveryByte) {
  EchoPool echo(3, MultiLoopMode::kHandoff);
  ASSERT_TRUE(echo.server->Listen(0).ok());
  constexpr int kConnections = 30;
  for (int k = 0; k < kConnections; ++k) {
    const int fd = Connect(echo.server->Port());
    ASSERT_GE(fd, 0);
    const std::string message = absl::StrCat("connection ", k, " ", std::string(k * 100, 'x'));
    EXPECT_TRUE(RoundTrip(fd, message));
    const std::vector<uint64_t> counts = echo.server->ConnectionsPerLoop();
    for (int i = 0; i < 3; ++i) {
      EXPECT_EQ(counts[i], static_cast<uint64_t>(k / 3 + (i <= k % 3 ? 1 : 0))) << k << " " << i;
    }
    close(fd);
  }
  EXPECT_EQ(echo.server->ConnectionsPerLoop(), (std::vector<uint64_t>{10, 10, 10}));
}

// SO_REUSEPORT: the kernel hashes; over 1,000 connections every loop gets some (the
// chance that one of 3 gets none is (2/3)^1000).
TEST(MultiLoopTCPServerTest, ReusePortGivesEveryLoopSomeOfAThousand) {
  EchoPool echo(3, MultiLoopMode::kReusePort);
  ASSERT_TRUE(echo.server->Listen(0).ok());
  constexpr int kConnections = 1000;
  for (int k = 0; k < kConnections; ++k) {
    const int fd = Connect(echo.server->Port());
    ASSERT_GE(fd, 0) << k << ": " << errno;
    ASSERT_TRUE(RoundTrip(fd, absl::StrCat("hello ", k)));
    close(fd);
  }
  const std::vector<uint64_t> counts = echo.server->ConnectionsPerLoop();
  uint64_t total = 0;
  for (uint64_t c : counts) {
    EXPECT_GT(c, 0u);
    total += c;
  }
  EXPECT_EQ(total, static_cast<uint64_t>(kConnections));
}

TEST(MultiLoopTCPServerTest, ListenErrorsLeaveNothingOpen) {
  LoopThreadPool pool(2);
  ASSERT_TRUE(pool.Start().ok());
  const int fds_before = CountDir("/proc/self/fd");
  {
    MultiLoopTCPServer first(&pool, [](size_t, std::unique_ptr<IOStream>, const SocketAddress&) {},
                             {.mode = MultiLoopMode::kHandoff});
    ASSERT_TRUE(first.Listen(0).ok());
    EXPECT_EQ(first.Listen(0).code(), absl::StatusCode::kFailedPrecondition);
    // The port is taken without SO_REUSEPORT: a reuseport server cannot join it.
    MultiLoopTCPServer second(&pool, [](size_t, std::unique_ptr<IOStream>, const SocketAddress&) {},
                              {.mode = MultiLoopMode::kReusePort});
    absl::Status s = second.Listen(first.Port());
    EXPECT_FALSE(s.ok());
    EXPECT_NE(s.message().find(absl::StrCat(first.Port())), absl::string_view::npos) << s;
  }
  EXPECT_EQ(CountDir("/proc/self/fd"), fds_before);
}

TEST(MultiLoopTCPServerTest, ListenOnAPoolThatDoesNotRunFails) {
  LoopThreadPool pool(2);  // Never started.
  const int fds_before = CountDir("/proc/self/fd");
  for (MultiLoopMode mode : {MultiLoopMode::kReusePort, MultiLoopMode::kHandoff}) {
    MultiLoopTCPServer server(&pool, [](size_t, std::unique_ptr<IOStream>, const SocketAddress&) {},
                              {.mode = mode});
    EXPECT_EQ(server.Listen(0).code(), absl::StatusCode::kFailedPrecondition);
  }
  EXPECT_EQ(CountDir("/proc/self/fd"), fds_before);
}

// A stalled loop keeps its share in both modes: connections made while loop 1 is
// blocked wait for it (in its listener's backlog with reuseport, in its callback
// queue with handoff) instead of going to loop 0, and are served once it comes back.
class StalledLoopTest : public ::testing::TestWithParam<MultiLoopMode> {};

TEST_P(StalledLoopTest, KeepsItsShareAndServesItLater) {
  EchoPool echo(2, GetParam());
  ASSERT_TRUE(echo.server->Listen(0).ok());
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::promise<void> stalled;
  ASSERT_TRUE(echo.pool.thread(1).AddCallback([&stalled, released] {
    stalled.set_value();
    released.wait();
  }));
  stalled.get_future().wait();  // Loop 1 is blocked from here until release.
  constexpr int kConnections = 100;
  std::vector<int> fds;
  for (int k = 0; k < kConnections; ++k) {
    fds.push_back(Connect(echo.server->Port()));  // The kernel completes the handshake.
    ASSERT_GE(fds.back(), 0);
  }
  EXPECT_EQ(echo.server->ConnectionsPerLoop()[1], 0u);  // Stalled: nothing delivered.
  release.set_value();
  for (int k = 0; k < kConnections; ++k) {
    EXPECT_TRUE(RoundTrip(fds[k], absl::StrCat("after the stall ", k)));
    close(fds[k]);
  }
  const std::vector<uint64_t> counts = echo.server->ConnectionsPerLoop();
  EXPECT_EQ(counts[0] + counts[1], static_cast<uint64_t>(kConnections));
  if (GetParam() == MultiLoopMode::kHandoff) {
    EXPECT_EQ(counts[1], static_cast<uint64_t>(kConnections / 2));
  } else {
    EXPECT_GT(counts[1], 0u);  // (1/2)^100 that the hash gave it none.
  }
}

INSTANTIATE_TEST_SUITE_P(Modes, StalledLoopTest,
                         ::testing::Values(MultiLoopMode::kReusePort, MultiLoopMode::kHandoff),
                         [](const auto& info) {
                           return std::string(MultiLoopModeName(info.param));
                         });

// Stop under load: clients keep connecting and echoing while the server stops, the
// per-loop state is torn down and the pool joined. Afterwards no thread, fd or stream
// is left, and every reply a client got was its own bytes.
class StopUnderLoadTest : public ::testing::TestWithParam<MultiLoopMode> {};

TEST_P(StopUnderLoadTest, LeavesNoThreadFdOrStreamBehind) {
  const int threads_before = CountDir("/proc/self/task");
  const int fds_before = CountDir("/proc/self/fd");
  {
    EchoPool echo(2, GetParam());
    ASSERT_TRUE(echo.server->Listen(0).ok());
    const int port = echo.server->Port();
    std::atomic<int> round_trips{0};
    std::atomic<bool> refused{false};
    std::vector<std::thread> clients;
    for (int c = 0; c < 4; ++c) {
      clients.emplace_back([&, c] {
        // Connect, echo a few messages, close; again, until the server is gone.
        for (int n = 0;; ++n) {
          const int fd = Connect(port);
          if (fd < 0) {
            refused = true;
            return;
          }
          for (int m = 0; m < 5; ++m) {
            const std::string message = absl::StrCat("client ", c, " conn ", n, " msg ", m);
            if (send(fd, message.data(), message.size(), MSG_NOSIGNAL) < 0) break;
            std::string got;
            char buf[256];
            ssize_t r = 0;
            while (got.size() < message.size() && (r = read(fd, buf, sizeof buf)) > 0) {
              got.append(buf, static_cast<size_t>(r));
            }
            if (r < 0 && errno == EAGAIN) ADD_FAILURE() << "a client waited 30 s for an echo";
            if (got.size() < message.size()) break;  // EOF or reset: the server stopped.
            EXPECT_EQ(got, message);
            ++round_trips;
          }
          close(fd);
        }
      });
    }
    // Let load build up: wait (by condition, not by time) for some echoes.
    while (round_trips.load() < 200) std::this_thread::yield();
    echo.Shutdown();
    for (auto& t : clients) t.join();
    EXPECT_TRUE(refused.load());
    for (size_t i = 0; i < echo.echoes.size(); ++i) EXPECT_EQ(echo.echoes[i], nullptr);
  }
  EXPECT_EQ(CountDir("/proc/self/task"), threads_before);
  EXPECT_EQ(CountDir("/proc/self/fd"), fds_before);
}

INSTANTIATE_TEST_SUITE_P(Modes, StopUnderLoadTest,
                         ::testing::Values(MultiLoopMode::kReusePort, MultiLoopMode::kHandoff),
                         [](const auto& info) {
                           return std::string(MultiLoopModeName(info.param));
                         });

}  // namespace
}  // namespace ioloop
