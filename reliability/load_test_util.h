// Helpers shared by the load and fault tests: a loopback echo client, fd counting,
// CPU time, and sizes that shrink under sanitizers (which run 5-20x slower).

#ifndef IOLOOP_RELIABILITY_LOAD_TEST_UTIL_H_
#define IOLOOP_RELIABILITY_LOAD_TEST_UTIL_H_

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "base/process_stats.h"

namespace ioloop::reliability {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
inline constexpr int kSanitizerDivisor = 10;
#else
inline constexpr int kSanitizerDivisor = 1;
#endif

using base::PeakRssKb;
using base::ProcessCpuNanos;
using base::RaiseFdLimit;

inline std::set<int> OpenFds() {
  std::set<int> fds;
  DIR* d = opendir("/proc/self/fd");
  const int own = dirfd(d);
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    const int fd = std::atoi(e->d_name);
    if (fd != own) fds.insert(fd);
  }
  closedir(d);
  return fds;
}

inline int ConnectLoopback(int port, bool nonblocking) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0), 0);
  if (fd < 0) return -1;
  sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 && errno != EINPROGRESS) {
    close(fd);
    return -1;
  }
  return fd;
}

// EchoClientResult: what a client run saw.
struct EchoClientResult {
  int connections = 0;
  uint64_t bytes_sent = 0;
  uint64_t bytes_echoed = 0;  // Received back and equal to what was sent.
  int mismatches = 0;
  int failures = 0;  // Connections refused, reset or closed early.
};

// RunEchoClient() opens `connections` connections (in batches, so the listen backlog
// keeps up), sends `messages` 64-byte messages on each, and reads every byte back,
// checking content. Single-threaded epoll; stops after `limit`.
inline EchoClientResult RunEchoClient(int port, int connections, int messages,
                                      std::chrono::seconds limit = std::chrono::seconds(50)) {
  EchoClientResult result;
  const auto deadline = std::chrono::steady_clock::now() + limit;
  const int ep = epoll_create1(EPOLL_CLOEXEC);
  struct Conn {
    int fd;
    size_t sent = 0, received = 0;
  };
  std::vector<Conn> conns;
  const size_t total = static_cast<size_t>(messages) * 64;
  auto byte_at = [](size_t i, int fd) { return static_cast<char>('a' + (i + fd) % 26); };
  std::vector<char> out(total);
  int open_now = 0;
  for (int batch = 0; batch < connections; batch += 500) {
    for (int i = batch; i < connections && i < batch + 500; ++i) {
      const int fd = ConnectLoopback(port, /*nonblocking=*/true);
      if (fd < 0) {
        ++result.failures;
        continue;
      }
      conns.push_back({fd});
      epoll_event ev{};
      ev.events = EPOLLIN | EPOLLOUT;
      ev.data.u64 = conns.size() - 1;
      epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
      ++open_now;
    }
  }
  result.connections = static_cast<int>(conns.size());
  std::vector<epoll_event> events(1024);
  char buf[8192];
  while (open_now > 0 && std::chrono::steady_clock::now() < deadline) {
    const int n = epoll_wait(ep, events.data(), static_cast<int>(events.size()), 100);
    for (int k = 0; k < n; ++k) {
      Conn& c = conns[events[k].data.u64];
      if (c.fd < 0) continue;
      bool done = false;
      if ((events[k].events & EPOLLOUT) && c.sent < total) {
        for (size_t i = c.sent; i < total; ++i) out[i] = byte_at(i, c.fd);
        const ssize_t w = send(c.fd, out.data() + c.sent, total - c.sent, MSG_NOSIGNAL);
        if (w > 0) {
          c.sent += static_cast<size_t>(w);
          result.bytes_sent += static_cast<uint64_t>(w);
        } else if (w < 0 && errno != EAGAIN) {
          done = true;
          ++result.failures;
        }
        if (c.sent == total) {
          epoll_event ev{};
          ev.events = EPOLLIN;
          ev.data.u64 = events[k].data.u64;
          epoll_ctl(ep, EPOLL_CTL_MOD, c.fd, &ev);
        }
      }
      if (!done && (events[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
        const ssize_t r = read(c.fd, buf, sizeof buf);
        if (r > 0) {
          for (ssize_t i = 0; i < r; ++i) {
            if (buf[i] != byte_at(c.received + static_cast<size_t>(i), c.fd)) ++result.mismatches;
          }
          c.received += static_cast<size_t>(r);
          result.bytes_echoed += static_cast<uint64_t>(r);
          if (c.received == total) done = true;
        } else if (r == 0 || errno != EAGAIN) {
          done = true;
          ++result.failures;
        }
      }
      if (done) {
        close(c.fd);
        c.fd = -1;
        --open_now;
      }
    }
  }
  for (Conn& c : conns) {
    if (c.fd >= 0) {
      close(c.fd);
      ++result.failures;
    }
  }
  close(ep);
  return result;
}

}  // namespace ioloop::reliability

#endif  // IOLOOP_RELIABILITY_LOAD_TEST_UTIL_H_
