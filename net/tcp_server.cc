#include "net/tcp_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/check.h"
#include "base/eintr.h"
#include "base/errno_status.h"

namespace ioloop {
namespace {

int OpenReserveFd() { return open("/dev/null", O_RDONLY | O_CLOEXEC); }

int AcceptNonBlocking(int listen_fd, SocketAddress& peer) {
  peer.length = sizeof peer.storage;
  auto* addr = reinterpret_cast<sockaddr*>(&peer.storage);
#ifdef __linux__
  return accept4(listen_fd, addr, &peer.length, SOCK_NONBLOCK | SOCK_CLOEXEC);
#else
  const int fd = accept(listen_fd, addr, &peer.length);
  if (fd >= 0) {
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  }
  return fd;
#endif
}

// The state of one accept handler, shared by the handler, its remover and the retry
// timeout.
struct Acceptor {
  IOLoop* loop;
  int listen_fd;
  AcceptCallback callback;
  AcceptOptions options;
  AcceptStats own_stats;
  int reserve_fd = -1;
  bool removed = false;
  bool paused = false;
  TimeoutHandle retry;

  AcceptStats& stats() { return options.stats != nullptr ? *options.stats : own_stats; }

  ~Acceptor() {
    if (reserve_fd >= 0) close(reserve_fd);
  }

  void Remove() {
    if (removed) return;
    removed = true;
    loop->RemoveTimeout(retry);
    loop->RemoveHandler(listen_fd).IgnoreError();  // Destroys the handler's reference.
  }

  // Pause() stops watching the listener for a while: no fd could be freed, so the
  // pending connection cannot be taken, and a level-triggered listener would spin.
  void Pause(const std::shared_ptr<Acceptor>& self) {
    if (paused || removed) return;
    paused = true;
    ++stats().pauses;
    loop->UpdateHandler(listen_fd, kNone).IgnoreError();
    std::weak_ptr<Acceptor> weak = self;
    retry = loop->AddTimeout(options.retry_after, [weak] {
      std::shared_ptr<Acceptor> a = weak.lock();
      if (a == nullptr || a->removed) return;
      a->retry = TimeoutHandle();
      a->paused = false;
      if (a->reserve_fd < 0) a->reserve_fd = OpenReserveFd();
      a->loop->UpdateHandler(a->listen_fd, kRead).IgnoreError();
    });
  }

  void OnReadable(const std::shared_ptr<Acceptor>& self) {
    for (int i = 0; i < options.max_accepts_per_wakeup && !removed; ++i) {
      SocketAddress peer;
      const int fd = RetryOnEintr([&] { return AcceptNonBlocking(listen_fd, peer); });
      if (fd >= 0) {
        ++stats().accepted;
        callback(fd, peer);  // May remove this handler: `removed` is checked above.
        continue;
      }
      switch (errno) {
        case ECONNABORTED:
          ++stats().aborted;
          continue;
        case EMFILE:
        case ENFILE:
        case ENOBUFS:
        case ENOMEM:
          if (reserve_fd < 0) reserve_fd = OpenReserveFd();
          if (reserve_fd >= 0) {
            // Out of fds: free the reserve, take the pending connection and drop it, so
            // the listener stops being readable for it; then re-arm the reserve.
            close(reserve_fd);
            reserve_fd = -1;
            const int dropped = accept(listen_fd, nullptr, nullptr);
            if (dropped >= 0) {
              close(dropped);
              ++stats().dropped_for_fd_limit;
            }
            reserve_fd = OpenReserveFd();
            if (reserve_fd >= 0) continue;
          }
          Pause(self);
          return;
        default:
          return;  // EAGAIN: drained. Anything else: try again on the next event.
      }
    }
  }
};

}  // namespace

std::string SocketAddress::Host() const {
  char text[INET6_ADDRSTRLEN] = {};
  if (storage.ss_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&storage)->sin_addr, text,
              sizeof text);
  } else if (storage.ss_family == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&storage)->sin6_addr, text,
              sizeof text);
  }
  return text;
}

int SocketAddress::Port() const {
  if (storage.ss_family == AF_INET) {
    return ntohs(reinterpret_cast<const sockaddr_in*>(&storage)->sin_port);
  }
  if (storage.ss_family == AF_INET6) {
    return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage)->sin6_port);
  }
  return 0;
}

std::string SocketAddress::ToString() const {
  if (storage.ss_family == AF_INET6) return absl::StrCat("[", Host(), "]:", Port());
  return absl::StrCat(Host(), ":", Port());
}

absl::StatusOr<SocketAddress> LocalAddress(int fd) {
  SocketAddress address;
  address.length = sizeof address.storage;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&address.storage), &address.length) < 0) {
    return ErrnoStatus(errno, "LocalAddress: getsockname", fd);
  }
  return address;
}

absl::StatusOr<std::vector<int>> BindSockets(int port, absl::string_view address, int backlog,
                                             bool reuse_port) {
  const std::string where = absl::StrCat(address.empty() ? "*" : address, " port ", port);
  if (port < 0 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("BindSockets ", where, ": bad port"));
  }
  addrinfo hints = {};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* results = nullptr;
  const std::string host(address);
  const std::string service = absl::StrCat(port);
  const int gai =
      getaddrinfo(host.empty() ? nullptr : host.c_str(), service.c_str(), &hints, &results);
  if (gai != 0) {
    return absl::NotFoundError(absl::StrCat("BindSockets ", where, ": ", gai_strerror(gai)));
  }
  std::vector<int> fds;
  std::vector<std::string> bound;
  int bound_port = 0;
  absl::Status error;
  for (addrinfo* ai = results; ai != nullptr && error.ok(); ai = ai->ai_next) {
    if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6) continue;
    SocketAddress addr;
    std::memcpy(&addr.storage, ai->ai_addr, ai->ai_addrlen);
    addr.length = ai->ai_addrlen;
    if (port == 0 && bound_port != 0) {
      // Every socket on the same free port, as Tornado does.
      if (ai->ai_family == AF_INET) {
        reinterpret_cast<sockaddr_in*>(&addr.storage)->sin_port = htons(bound_port);
      } else {
        reinterpret_cast<sockaddr_in6*>(&addr.storage)->sin6_port = htons(bound_port);
      }
    }
    const std::string text = addr.ToString();
    bool duplicate = false;
    for (const std::string& b : bound) duplicate |= b == text;
    if (duplicate) continue;
    const int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      if (errno == EAFNOSUPPORT) continue;  // No IPv6 in this kernel: skip, as Tornado does.
      error = ErrnoStatus(errno, absl::StrCat("BindSockets: socket for ", text));
      break;
    }
    const int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (ai->ai_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (reuse_port) {
#ifdef SO_REUSEPORT
      if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0) {
        error = ErrnoStatus(errno, absl::StrCat("BindSockets: SO_REUSEPORT on ", text), fd);
        close(fd);
        break;
      }
#else
      error = absl::UnimplementedError("BindSockets: SO_REUSEPORT is not available here");
      close(fd);
      break;
#endif
    }
    if (bind(fd, reinterpret_cast<sockaddr*>(&addr.storage), addr.length) < 0) {
      error = ErrnoStatus(errno, absl::StrCat("BindSockets: bind ", text), fd);
      close(fd);
      break;
    }
    if (listen(fd, backlog) < 0) {
      error = ErrnoStatus(errno, absl::StrCat("BindSockets: listen on ", text), fd);
      close(fd);
      break;
    }
    if (port == 0 && bound_port == 0) {
      absl::StatusOr<SocketAddress> local = LocalAddress(fd);
      if (local.ok()) bound_port = local->Port();
    }
    fds.push_back(fd);
    bound.push_back(text);
  }
  freeaddrinfo(results);
  if (error.ok() && fds.empty()) {
    error = absl::NotFoundError(absl::StrCat("BindSockets ", where, ": no IPv4 or IPv6 address"));
  }
  if (!error.ok()) {
    for (int fd : fds) close(fd);
    return error;
  }
  return fds;
}

absl::StatusOr<absl::AnyInvocable<void()>> AddAcceptHandler(IOLoop* loop, int listen_fd,
                                                            AcceptCallback callback,
                                                            AcceptOptions options) {
  IOLOOP_CHECK(options.max_accepts_per_wakeup > 0, "AddAcceptHandler: max_accepts_per_wakeup");
  auto acceptor = std::make_shared<Acceptor>();
  acceptor->loop = loop;
  acceptor->listen_fd = listen_fd;
  acceptor->callback = std::move(callback);
  acceptor->options = options;
  acceptor->reserve_fd = OpenReserveFd();
  if (absl::Status s = loop->AddHandler(
          listen_fd, [acceptor](int, EventMask) { acceptor->OnReadable(acceptor); }, kRead);
      !s.ok()) {
    return s;
  }
  std::weak_ptr<Acceptor> weak = acceptor;
  return absl::AnyInvocable<void()>([weak] {
    if (std::shared_ptr<Acceptor> a = weak.lock()) a->Remove();
  });
}

TCPServer::TCPServer(IOLoop* loop, HandleStream handle_stream, IOStream::Options stream_options,
                     AcceptOptions accept_options)
    : loop_(loop),
      handle_stream_(std::move(handle_stream)),
      stream_options_(stream_options),
      accept_options_(accept_options) {
  accept_options_.stats = &stats_;
}

TCPServer::~TCPServer() { Stop(); }

absl::Status TCPServer::Listen(int port, absl::string_view address) {
  absl::StatusOr<std::vector<int>> fds = BindSockets(port, address);
  if (!fds.ok()) return fds.status();
  return AddSockets(*std::move(fds));
}

absl::Status TCPServer::AddSockets(std::vector<int> fds) {
  std::vector<absl::AnyInvocable<void()>> removers;
  for (int fd : fds) {
    absl::StatusOr<absl::AnyInvocable<void()>> remover = AddAcceptHandler(
        loop_, fd,
        [this](int fd, const SocketAddress& peer) {
          handle_stream_(std::make_unique<IOStream>(loop_, fd, stream_options_), peer);
        },
        accept_options_);
    if (!remover.ok()) {
      for (auto& r : removers) r();
      for (int f : fds) close(f);
      return remover.status();
    }
    removers.push_back(*std::move(remover));
  }
  for (auto& r : removers) removers_.push_back(std::move(r));
  sockets_.insert(sockets_.end(), fds.begin(), fds.end());
  return absl::OkStatus();
}

void TCPServer::Stop() {
  for (auto& remove : removers_) remove();
  removers_.clear();
  for (int fd : sockets_) close(fd);
  sockets_.clear();
}

int TCPServer::Port() const {
  if (sockets_.empty()) return 0;
  absl::StatusOr<SocketAddress> local = LocalAddress(sockets_.front());
  return local.ok() ? local->Port() : 0;
}

}  // namespace ioloop
