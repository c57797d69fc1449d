// Load and fault tests: the loop and the echo server under many connections, fd
// exhaustion, signal storms, cross-thread floods, throwing callbacks, misbehaving
// peers, and shutdown under load. Each prints the figure docs/reliability.md quotes
// ("FIGURE name=value"); each finishes in well under a minute on 2 cores.

#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>

#include <atomic>
#include <cstdio>
#include <stdexcept>
#include <thread>

#include "absl/status/status.h"
#include "backends/default_poller.h"
#include "examples/echo_server.h"
#include "gtest/gtest.h"
#include "ioloop/io_loop.h"
#include "reliability/load_test_util.h"
#include "reliability/stream_backends.h"

namespace ioloop::reliability {
namespace {

using examples::EchoServer;
using examples::EchoServerOptions;

void Figure(const char* name, double value) {
  std::printf("FIGURE %s=%.6g\n", name, value);
  ::testing::Test::RecordProperty(name, std::to_string(value));
}

// Runs `client` in a child process (its own fd table: a client and a server sharing
// one process would need two fds per connection against a 20,000 limit) and returns
// its exit status to the loop by a pipe. Call before any thread exists.
struct ChildClient {
  pid_t pid = -1;
  int result_fd = -1;  // Readable with one byte when the child is done.
};

template <typename F>
ChildClient ForkClient(F client) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) std::abort();
  const pid_t pid = fork();
  if (pid == 0) {
    close(p[0]);
    const char ok = client() ? 1 : 0;
    (void)!write(p[1], &ok, 1);
    _exit(0);
  }
  close(p[1]);
  return {pid, p[0]};
}

// Watches `child`'s result_fd on `loop`: when the child is done, stores its byte (1 if
// its client succeeded) in *ok, which must outlive the loop's run, and stops the loop.
absl::Status StopWhenChildDone(IOLoop& loop, const ChildClient& child, char* ok) {
  return loop.AddHandler(
      child.result_fd,
      [&loop, ok](int fd, EventMask) {
        (void)!read(fd, ok, 1);
        loop.Stop();
      },
      kRead);
}

// Ten thousand concurrent connections, each echoing 100 messages: every byte back.
// The echo server is on TCPServer + IOStream, so this runs on the default poller and
// on io_uring (reliability/stream_backends.h).
class StreamLoadTest : public StreamBackendTest {};

TEST_P(StreamLoadTest, TenThousandConnectionsEchoEveryByte) {
  RaiseFdLimit();
  const int connections = 10000 / kSanitizerDivisor;
  constexpr int kMessages = 100;
  IOLoop& loop = this->loop();
  EchoServerOptions options;
  options.backlog = 4096;
  auto server = EchoServer::Listen(&loop, options);
  ASSERT_TRUE(server.ok()) << server.status();
  const int port = (*server)->port();
  EchoClientResult seen;
  int shared[2];
  ASSERT_EQ(pipe(shared), 0);
  ChildClient child = ForkClient([&] {
    RaiseFdLimit();
    EchoClientResult r = RunEchoClient(port, connections, kMessages);
    (void)!write(shared[1], &r, sizeof r);
    return r.failures == 0;
  });
  close(shared[1]);
  char ok = 0;
  ASSERT_TRUE(StopWhenChildDone(loop, child, &ok).ok());
  const int64_t cpu0 = ProcessCpuNanos();
  loop.AddTimeout(absl::Seconds(55), [&] { loop.Stop(); });
  loop.Start();
  ASSERT_EQ(read(shared[0], &seen, sizeof seen), static_cast<ssize_t>(sizeof seen));
  waitpid(child.pid, nullptr, 0);
  EXPECT_EQ(ok, 1);
  EXPECT_EQ(seen.connections, connections);
  EXPECT_EQ(seen.failures, 0);
  EXPECT_EQ(seen.mismatches, 0);
  EXPECT_EQ(seen.bytes_echoed, static_cast<uint64_t>(connections) * kMessages * 64);
  EXPECT_EQ((*server)->accepted(), static_cast<uint64_t>(connections));
  Figure("connections", connections);
  Figure("bytes_echoed", static_cast<double>(seen.bytes_echoed));
  Figure("server_peak_rss_mib", PeakRssKb() / 1024.0);
  Figure("server_cpu_s", (ProcessCpuNanos() - cpu0) / 1e9);
  close(shared[0]);
  close(child.result_fd);
}

INSTANTIATE_TEST_SUITE_P(Backends, StreamLoadTest, ::testing::ValuesIn(StreamBackends()),
                         StreamBackendName);

// With RLIMIT_NOFILE lowered, a burst of connections beyond it must not spin the
// accept handler, and the server serves again once fds free up.
TEST(FaultTest, FdExhaustionDoesNotBusyLoopAndRecovers) {
  IOLoop loop;
  auto server = EchoServer::Listen(&loop, {});
  ASSERT_TRUE(server.ok()) << server.status();
  const int port = (*server)->port();
  constexpr int kBurst = 300;
  ChildClient child = ForkClient([&] {
    std::vector<int> held;
    for (int i = 0; i < kBurst; ++i) {
      const int fd = ConnectLoopback(port, /*nonblocking=*/false);
      if (fd >= 0) held.push_back(fd);
    }
    // Hold them for a second while the server is out of fds.
    std::this_thread::sleep_for(std::chrono::seconds(1));
    for (int fd : held) close(fd);
    // Then a fresh client must be served.
    EchoClientResult r = RunEchoClient(port, 5, 10, std::chrono::seconds(20));
    return r.failures == 0 && r.mismatches == 0 && r.bytes_echoed == 5 * 10 * 64;
  });
  // Leave the server ~50 spare fds.
  rlimit old;
  getrlimit(RLIMIT_NOFILE, &old);
  rlimit low = old;
  low.rlim_cur = static_cast<rlim_t>(*OpenFds().rbegin() + 50);
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
  char ok = 0;
  ASSERT_TRUE(StopWhenChildDone(loop, child, &ok).ok());
  loop.AddTimeout(absl::Seconds(50), [&] { loop.Stop(); });
  const int64_t cpu0 = ProcessCpuNanos();
  const auto wall0 = std::chrono::steady_clock::now();
  loop.Start();
  const double cpu_s = (ProcessCpuNanos() - cpu0) / 1e9;
  const double wall_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count();
  setrlimit(RLIMIT_NOFILE, &old);
  waitpid(child.pid, nullptr, 0);
  EXPECT_EQ(ok, 1) << "the server must serve again once fds free up";
  EXPECT_GT((*server)->dropped_for_fd_limit(), 0u) << "the burst did exceed the limit";
  // A spinning accept handler would burn the whole second of holding; a healthy one
  // sleeps in poll.
  EXPECT_LT(cpu_s, 0.5 * wall_s) << "cpu " << cpu_s << " s over " << wall_s << " s";
  Figure("emfile_dropped_connections", static_cast<double>((*server)->dropped_for_fd_limit()));
  Figure("emfile_cpu_s", cpu_s);
  Figure("emfile_wall_s", wall_s);
  close(child.result_fd);
}

std::atomic<IOLoop*> g_storm_loop{nullptr};
std::atomic<uint64_t> g_storm_callbacks{0};
void CountStormCallback() { g_storm_callbacks.fetch_add(1, std::memory_order_relaxed); }
void OnStormSignal(int) {
  if (IOLoop* loop = g_storm_loop.load()) loop->AddCallbackFromSignal(&CountStormCallback);
}

// A storm of signals at the loop thread while it serves: nothing lost, no crash.
TEST(FaultTest, SignalStormWhileServing) {
  IOLoop loop;
  auto server = EchoServer::Listen(&loop, {});
  ASSERT_TRUE(server.ok());
  g_storm_loop = &loop;
  struct sigaction action = {}, old_usr1, old_alrm;
  action.sa_handler = &OnStormSignal;
  sigaction(SIGUSR1, &action, &old_usr1);
  sigaction(SIGALRM, &action, &old_alrm);
  const pthread_t loop_thread = pthread_self();
  std::atomic<bool> serving{true};
  uint64_t signals_sent = 0;
  std::thread storm([&] {
    while (serving.load()) {
      pthread_kill(loop_thread, (signals_sent & 1) ? SIGUSR1 : SIGALRM);
      ++signals_sent;
    }
  });
  EchoClientResult seen;
  const int connections = 50;
  const int messages = 2000 / kSanitizerDivisor;
  std::thread client([&] {
    seen = RunEchoClient((*server)->port(), connections, messages);
    loop.AddCallback([&] { loop.Stop(); });
  });
  loop.Start();
  client.join();
  serving = false;
  storm.join();
  // Let the signals still queued run.
  loop.AddCallback([&] { loop.Stop(); });
  loop.Start();
  g_storm_loop = nullptr;
  sigaction(SIGUSR1, &old_usr1, nullptr);
  sigaction(SIGALRM, &old_alrm, nullptr);
  EXPECT_EQ(seen.failures, 0);
  EXPECT_EQ(seen.mismatches, 0);
  EXPECT_EQ(seen.bytes_echoed, static_cast<uint64_t>(connections) * messages * 64);
  EXPECT_GT(g_storm_callbacks.load(), 0u);
  Figure("signals_sent", static_cast<double>(signals_sent));
  Figure("signal_callbacks_run", static_cast<double>(g_storm_callbacks.load()));
  Figure("signal_queue_overflows", static_cast<double>(loop.Metrics().signal_callbacks_dropped));
  Figure("signal_storm_bytes_echoed", static_cast<double>(seen.bytes_echoed));
}

class CountingLoop : public IOLoop {
 public:
  std::atomic<uint64_t> exceptions{0};

 protected:
  void HandleCallbackException(std::exception_ptr) override { exceptions.fetch_add(1); }
};

// Stops `loop` once `done` is set, checking every 5 ms (a copyable callable, so it can
// re-schedule itself without owning itself).
struct StopWhenDone {
  IOLoop* loop;
  std::atomic<bool>* done;
  void operator()() const {
    if (done->load()) {
      loop->Stop();
    } else {
      loop->AddTimeout(absl::Milliseconds(5), *this);
    }
  }
};

// Eight threads flood AddCallback while the loop serves I/O; some callbacks throw.
TEST(LoadTest, EightThreadsOfCallbacksWhileServingEveryOneRunsOnce) {
  CountingLoop loop;
  auto server = EchoServer::Listen(&loop, {});
  ASSERT_TRUE(server.ok());
  constexpr int kThreads = 8;
  const int per_thread = 1000000 / kSanitizerDivisor;
  constexpr int kThrowEvery = 1000;
  std::vector<std::vector<uint8_t>> ran(kThreads, std::vector<uint8_t>(per_thread, 0));
  std::atomic<int> producers_left{kThreads};
  EchoClientResult seen;
  std::atomic<bool> client_done{false};
  std::thread client([&] {
    seen = RunEchoClient((*server)->port(), 50, 1000 / kSanitizerDivisor);
    client_done = true;
  });
  std::vector<std::thread> producers;
  for (int t = 0; t < kThreads; ++t) {
    producers.emplace_back([&, t] {
      for (int i = 0; i < per_thread; ++i) {
        loop.AddCallback([&ran, t, i] {
          ++ran[t][i];
          if (i % kThrowEvery == 0) throw std::runtime_error("thrown under load");
        });
      }
      if (producers_left.fetch_sub(1) == 1) {
        // Queued after every other callback of every thread; stops once the client
        // is done too.
        loop.AddCallback(StopWhenDone{&loop, &client_done});
      }
    });
  }
  loop.Start();
  for (std::thread& p : producers) p.join();
  client.join();
  uint64_t wrong = 0;
  for (const auto& v : ran) {
    for (uint8_t c : v) wrong += (c != 1);
  }
  const uint64_t total = static_cast<uint64_t>(kThreads) * per_thread;
  EXPECT_EQ(wrong, 0u) << "every callback runs exactly once";
  EXPECT_EQ(loop.exceptions.load(), total / kThrowEvery);
  EXPECT_LT(loop.Metrics().wakeups_sent, total) << "wake-ups are coalesced";
  EXPECT_EQ(seen.failures, 0);
  EXPECT_EQ(seen.mismatches, 0);
  Figure("callbacks_run", static_cast<double>(total));
  Figure("callback_exceptions_reported", static_cast<double>(loop.exceptions.load()));
  Figure("wakeups_sent", static_cast<double>(loop.Metrics().wakeups_sent));
  Figure("callbacks_per_wakeup",
         static_cast<double>(total) / std::max<uint64_t>(1, loop.Metrics().wakeups_sent));
  Figure("io_bytes_echoed_meanwhile", static_cast<double>(seen.bytes_echoed));
}

// Peers that never read: the server's per-connection buffer stays bounded. On the
// default poller and on io_uring, as the echo server is on IOStream.
class StreamFaultTest : public StreamBackendTest {};

TEST_P(StreamFaultTest, PeersThatNeverReadKeepMemoryBounded) {
  IOLoop& loop = this->loop();
  EchoServerOptions options;
  options.max_buffered_bytes = 32 * 1024;
  auto server = EchoServer::Listen(&loop, options);
  ASSERT_TRUE(server.ok());
  constexpr int kPeers = 100;
  std::vector<int> fds;
  uint64_t pushed = 0;
  std::thread client([&] {
    std::string chunk(64 * 1024, 'n');
    for (int i = 0; i < kPeers; ++i) fds.push_back(ConnectLoopback((*server)->port(), true));
    // Write until every socket pushes back; never read.
    for (int round = 0; round < 200; ++round) {
      for (int fd : fds) {
        const ssize_t w = send(fd, chunk.data(), chunk.size(), MSG_NOSIGNAL);
        if (w > 0) pushed += static_cast<uint64_t>(w);
      }
    }
    loop.AddCallback([&] { loop.Stop(); });
  });
  loop.Start();
  client.join();
  EXPECT_LE((*server)->peak_buffered_bytes(), options.max_buffered_bytes);
  EXPECT_GT(pushed, static_cast<uint64_t>(kPeers) * options.max_buffered_bytes)
      << "the peers did try to push more than the bound";
  Figure("never_reading_peers", kPeers);
  Figure("bytes_peers_got_into_kernel_buffers", static_cast<double>(pushed));
  Figure("server_peak_buffered_per_connection",
         static_cast<double>((*server)->peak_buffered_bytes()));
  for (int fd : fds) close(fd);
}

INSTANTIATE_TEST_SUITE_P(Backends, StreamFaultTest, ::testing::ValuesIn(StreamBackends()),
                         StreamBackendName);

// A poller that counts the polls that begin after a flag is set.
class CountingPoller : public Poller {
 public:
  explicit CountingPoller(std::unique_ptr<Poller> inner) : inner_(std::move(inner)) {}
  std::atomic<bool> stop_requested{false};
  std::atomic<int> polls_after_stop{0};
  absl::Status Register(int fd, EventMask e) override { return inner_->Register(fd, e); }
  absl::Status Modify(int fd, EventMask e) override { return inner_->Modify(fd, e); }
  absl::Status Unregister(int fd) override { return inner_->Unregister(fd); }
  absl::Status Poll(absl::Duration t, std::vector<PollEvent>& r) override {
    if (stop_requested.load()) polls_after_stop.fetch_add(1);
    return inner_->Poll(t, r);
  }
  absl::string_view Name() const override { return inner_->Name(); }

 private:
  std::unique_ptr<Poller> inner_;
};

// Stop() from another thread under heavy load returns within one iteration, and
// Close(true) then closes every fd the loop and its handlers held.
TEST(FaultTest, StopUnderLoadThenCloseAllFds) {
  const std::set<int> before = OpenFds();
  auto counting = std::make_unique<CountingPoller>(NewDefaultPoller());
  CountingPoller* poller = counting.get();
  IOLoop::Options options;
  options.poller = std::move(counting);
  IOLoop loop(std::move(options));
  // Busy handlers: 200 socketpairs ping-ponging as fast as they can.
  constexpr int kPairs = 200;
  std::atomic<uint64_t> events{0};
  for (int i = 0; i < kPairs; ++i) {
    int fds[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds), 0);
    for (int fd : fds) {
      ASSERT_TRUE(loop.AddHandler(
                          fd,
                          [&events](int fd, EventMask) {
                            char c;
                            if (read(fd, &c, 1) == 1) (void)!write(fd, &c, 1);
                            events.fetch_add(1, std::memory_order_relaxed);
                          },
                          kRead)
                      .ok());
    }
    ASSERT_EQ(write(fds[0], "x", 1), 1);
  }
  std::thread stopper([&] {
    while (events.load() < 200000 / static_cast<uint64_t>(kSanitizerDivisor))
      std::this_thread::yield();
    poller->stop_requested = true;
    loop.Stop();
  });
  loop.Start();
  stopper.join();
  const int polls_after_stop = poller->polls_after_stop.load();  // Close() frees the poller.
  EXPECT_LE(polls_after_stop, 1) << "Stop() returns within one iteration";
  ASSERT_TRUE(loop.Close(/*all_fds=*/true).ok());
  EXPECT_EQ(OpenFds(), before) << "Close(true) closed every fd the loop and handlers held";
  Figure("events_before_stop", static_cast<double>(events.load()));
  Figure("polls_after_stop", polls_after_stop);
}

}  // namespace
}  // namespace ioloop::reliability
