// NetTestLoop: an IOLoop for net/ tests, on the fake poller or on a real backend.
//
// "fake" runs the loop on testing::FakePoller and testing::FakeClock. A poll hook
// injects the real readiness of every registered fd (one poll(2) with timeout zero), so
// the same test drives real sockets while timeouts run in zero real time: when
// nothing is ready and a timer is pending, the fake clock jumps to it. Any other name
// is a real backend from NewPoller() with the real clock.
//
//   NetTestLoop t("fake");
//   IOStream stream(t.loop(), fd);
//   t.RunUntil([&] { return done; });

#ifndef IOLOOP_NET_TESTING_NET_TEST_LOOP_H_
#define IOLOOP_NET_TESTING_NET_TEST_LOOP_H_

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "backends/default_poller.h"
#include "base/check.h"
#include "ioloop/io_loop.h"
#include "testing/backends.h"
#include "testing/fake_clock.h"
#include "testing/fake_poller.h"

namespace ioloop::net_testing {

// Backends(): "fake" and every real backend this build has.
inline std::vector<std::string> Backends() {
  std::vector<std::string> names = {"fake"};
  for (std::string& name : testing::RealBackends()) names.push_back(std::move(name));
  return names;
}

class NetTestLoop {
 public:
  // `real_readiness`: with "fake", whether the hook reports the sockets' real
  // readiness (false: nothing is ever ready, for tests of timeouts).
  explicit NetTestLoop(const std::string& backend, bool real_readiness = true)
      : fake_(backend == "fake") {
    IOLoop::Options options;
    if (fake_) {
      auto poller = std::make_unique<testing::FakePoller>(&clock_);
      poller_ = poller.get();
      if (real_readiness) {
        poller_->SetPollHook([this](absl::Duration timeout) { InjectReadiness(timeout); });
      }
      options.poller = std::move(poller);
      options.clock = &clock_;
    } else {
      auto poller = NewPoller(backend);
      IOLOOP_CHECK(poller.ok(), poller.status().ToString());
      options.poller = *std::move(poller);
    }
    loop_ = std::make_unique<IOLoop>(std::move(options));
  }

  IOLoop* loop() { return loop_.get(); }
  bool fake() const { return fake_; }
  testing::FakePoller* fake_poller() { return poller_; }
  testing::FakeClock& clock() { return clock_; }

  // RunOnce() runs one poll (timeout zero) and its dispatch, plus the callbacks and due
  // timeouts around it.
  void RunOnce() {
    loop_->AddCallback([this] { loop_->AddCallback([this] { loop_->Stop(); }); });
    loop_->Start();
  }

  // RunUntil() runs iterations until `done()` holds (true) or `limit` real time
  // passed (false). On real backends it waits in poll between checks.
  bool RunUntil(const std::function<bool()>& done, absl::Duration limit = absl::Seconds(20)) {
    const absl::Time end = absl::Now() + limit;
    while (!done()) {
      if (absl::Now() > end) return false;
      if (fake_) {
        RunOnce();
      } else {
        RunFor(absl::Milliseconds(1));  // Waits in poll, dispatching what comes.
      }
    }
    return true;
  }

  // RunFor() runs the loop for `d` of its clock (zero real time on the fake).
  void RunFor(absl::Duration d) {
    loop_->AddTimeout(d, [this] { loop_->Stop(); });
    loop_->Start();
  }

 private:
  void InjectReadiness(absl::Duration timeout) {
    std::vector<pollfd> fds;
    const size_t registered = poller_->RegisteredCount();
    for (int fd = 0; fds.size() < registered && fd < (1 << 20); ++fd) {
      if (!poller_->IsRegistered(fd)) continue;
      const EventMask e = poller_->RegisteredEvents(fd);
      short want = 0;
      if (e & kRead) want |= POLLIN;
      if (e & kWrite) want |= POLLOUT;
      fds.push_back({fd, want, 0});
    }
    // Nothing pending in the loop (no timer, no callback): wait for real readiness,
    // as a real backend would, instead of letting the fake fail.
    const int wait_ms = timeout == absl::InfiniteDuration() ? 10000 : 0;
    if (poll(fds.data(), fds.size(), wait_ms) <= 0) return;
    for (const pollfd& p : fds) {
      EventMask m = kNone;
      if (p.revents & POLLIN) m |= kRead;
      if (p.revents & POLLOUT) m |= kWrite;
      if (p.revents & (POLLERR | POLLHUP | POLLNVAL)) m |= kError;
      if (m != kNone) poller_->Inject(p.fd, m);
    }
  }

  const bool fake_;
  testing::FakeClock clock_;
  testing::FakePoller* poller_ = nullptr;
  std::unique_ptr<IOLoop> loop_;
};

// SocketPair() makes a connected AF_UNIX stream pair, close-on-exec; [0] for the
// stream, [1] for the test's peer (blocking unless `nonblocking_peer`).
inline std::pair<int, int> SocketPair(bool nonblocking_peer = false) {
  int fds[2];
  IOLOOP_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0, "socketpair");
  if (nonblocking_peer) fcntl(fds[1], F_SETFL, fcntl(fds[1], F_GETFL) | O_NONBLOCK);
  return {fds[0], fds[1]};
}

// TcpPair() makes a connected loopback TCP pair (for resets and TCP options).
inline std::pair<int, int> TcpPair() {
  const int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  IOLOOP_CHECK(bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0, "bind");
  IOLOOP_CHECK(listen(listener, 1) == 0, "listen");
  socklen_t len = sizeof addr;
  getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len);
  const int client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  IOLOOP_CHECK(connect(client, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0, "connect");
  const int server = accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
  IOLOOP_CHECK(server >= 0, "accept");
  close(listener);
  return {server, client};
}

// ConnectTo() is a blocking loopback TCP client socket connected to `port`.
inline int ConnectTo(int port, const char* host = "127.0.0.1") {
  sockaddr_storage ss = {};
  socklen_t len;
  int family;
  if (inet_pton(AF_INET, host, &reinterpret_cast<sockaddr_in*>(&ss)->sin_addr) == 1) {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = family = AF_INET;
    a->sin_port = htons(static_cast<uint16_t>(port));
    len = sizeof *a;
  } else {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    IOLOOP_CHECK(inet_pton(AF_INET6, host, &a->sin6_addr) == 1, "address");
    a->sin6_family = family = AF_INET6;
    a->sin6_port = htons(static_cast<uint16_t>(port));
    len = sizeof *a;
  }
  const int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (connect(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// WriteAll() / ReadAll(): blocking helpers for the peer side.
inline bool WriteAll(int fd, absl::string_view data) {
  while (!data.empty()) {
    const ssize_t n = send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// ReadAvailable() reads what a non-blocking or ready fd has now, without waiting.
inline std::string ReadAvailable(int fd) {
  std::string out;
  char buf[65536];
  while (true) {
    pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, 0) <= 0) break;
    const ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

}  // namespace ioloop::net_testing

#endif  // IOLOOP_NET_TESTING_NET_TEST_LOOP_H_
