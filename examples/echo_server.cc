#include "examples/echo_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "absl/strings/str_cat.h"

namespace ioloop::examples {
namespace {

#ifdef MSG_NOSIGNAL
constexpr int kSendFlags = MSG_NOSIGNAL;  // EPIPE as an error, not a SIGPIPE.
#else
constexpr int kSendFlags = 0;
#endif

int OpenReserveFd() { return open("/dev/null", O_RDONLY | O_CLOEXEC); }

int AcceptNonBlocking(int listen_fd) {
#ifdef __linux__
  return accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
#else
  const int fd = accept(listen_fd, nullptr, nullptr);
  if (fd >= 0) {
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  }
  return fd;
#endif
}

}  // namespace

absl::StatusOr<std::unique_ptr<EchoServer>> EchoServer::Listen(IOLoop* loop,
                                                               EchoServerOptions options) {
  const std::string where = absl::StrCat(options.host, ":", options.port);
  sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(options.port));
  if (options.port < 0 || options.port > 65535 ||
      inet_pton(AF_INET, options.host.c_str(), &addr.sin_addr) != 1) {
    return absl::InvalidArgumentError(absl::StrCat("echo server: bad IPv4 address ", where));
  }
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::ErrnoToStatus(errno, absl::StrCat("echo server: socket for ", where));
  const int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0 ||
      listen(fd, options.backlog) < 0) {
    const int error = errno;
    close(fd);
    return absl::ErrnoToStatus(error, absl::StrCat("echo server: bind/listen on ", where));
  }
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  std::unique_ptr<EchoServer> server(
      new EchoServer(loop, fd, ntohs(addr.sin_port), std::move(options)));
  if (absl::Status s = loop->AddHandler(
          fd, [s = server.get()](int, EventMask) { s->OnAcceptable(); }, kRead);
      !s.ok()) {
    return s;  // The destructor closes fd.
  }
  return server;
}

EchoServer::EchoServer(IOLoop* loop, int listen_fd, int port, EchoServerOptions options)
    : loop_(loop),
      listen_fd_(listen_fd),
      port_(port),
      options_(std::move(options)),
      reserve_fd_(OpenReserveFd()) {}

EchoServer::~EchoServer() {
  while (!connections_.empty()) CloseConnection(connections_.begin()->first);
  loop_->RemoveHandler(listen_fd_).IgnoreError();
  close(listen_fd_);
  if (reserve_fd_ >= 0) close(reserve_fd_);
}

void EchoServer::OnAcceptable() {
  // Accept a bounded batch per readiness so one busy listener cannot starve the loop.
  for (int i = 0; i < 64; ++i) {
    const int fd = AcceptNonBlocking(listen_fd_);
    if (fd < 0) {
      if ((errno == EMFILE || errno == ENFILE) && reserve_fd_ >= 0) {
        // Out of fds: free the reserve, take the pending connection and drop it, so
        // the listener stops being readable for it; then re-arm the reserve.
        close(reserve_fd_);
        const int dropped = accept(listen_fd_, nullptr, nullptr);
        if (dropped >= 0) {
          close(dropped);
          ++dropped_for_fd_limit_;
        }
        reserve_fd_ = OpenReserveFd();
        continue;
      }
      return;  // EAGAIN (drained), ECONNABORTED, or no reserve left: try next time.
    }
    const int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    auto connection = std::make_unique<Connection>();
    Connection& c = *connection;
    connections_[fd] = std::move(connection);
    c.watching = kRead;
    if (!loop_
             ->AddHandler(
                 fd, [this](int fd, EventMask events) { OnConnectionEvent(fd, events); }, kRead)
             .ok()) {
      connections_.erase(fd);
      close(fd);
      continue;
    }
    ++accepted_;
  }
}

void EchoServer::OnConnectionEvent(int fd, EventMask events) {
  auto it = connections_.find(fd);
  if (it == connections_.end()) return;
  Connection& c = *it->second;
  if (events & kRead) {
    char buffer[16 * 1024];
    while (!c.peer_closed && c.pending.size() < options_.max_buffered_bytes) {
      const size_t room = std::min(sizeof buffer, options_.max_buffered_bytes - c.pending.size());
      const ssize_t n = read(fd, buffer, room);
      if (n > 0) {
        c.pending.append(buffer, static_cast<size_t>(n));
        continue;
      }
      if (n == 0) {
        c.peer_closed = true;  // Half-close: echo what is left, then close.
        break;
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      CloseConnection(fd);  // ECONNRESET and friends.
      return;
    }
    peak_buffered_ = std::max(peak_buffered_, c.pending.size());
  } else if (events & kError) {
    if (c.pending.empty() || c.peer_closed) {
      CloseConnection(fd);
      return;
    }
  }
  Flush(fd, c);
}

void EchoServer::Flush(int fd, Connection& c) {
  size_t written = 0;
  while (written < c.pending.size()) {
    const ssize_t n = send(fd, c.pending.data() + written, c.pending.size() - written, kSendFlags);
    if (n > 0) {
      written += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    CloseConnection(fd);  // EPIPE, ECONNRESET: the peer is gone.
    return;
  }
  bytes_echoed_ += written;
  c.pending.erase(0, written);
  if (c.peer_closed && c.pending.empty()) {
    CloseConnection(fd);
    return;
  }
  Watch(fd, c);
}

void EchoServer::Watch(int fd, Connection& c) {
  EventMask wanted = kNone;
  if (!c.peer_closed && c.pending.size() < options_.max_buffered_bytes) wanted |= kRead;
  if (!c.pending.empty()) wanted |= kWrite;
  if (wanted != c.watching) {
    c.watching = wanted;
    if (!loop_->UpdateHandler(fd, wanted).ok()) CloseConnection(fd);
  }
}

void EchoServer::CloseConnection(int fd) {
  loop_->RemoveHandler(fd).IgnoreError();
  connections_.erase(fd);
  close(fd);
}

}  // namespace ioloop::examples
