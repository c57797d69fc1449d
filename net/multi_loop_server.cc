#include "net/multi_loop_server.h"

#include <unistd.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "base/check.h"

namespace ioloop {
namespace {

// AcceptedFd owns an accepted connection on its way to another loop: if the callback
// carrying it is destroyed unrun (the target loop stopped), the fd is closed.
class AcceptedFd {
 public:
  explicit AcceptedFd(int fd) : fd_(fd) {}
  AcceptedFd(AcceptedFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  AcceptedFd& operator=(AcceptedFd&&) = delete;
  ~AcceptedFd() {
    if (fd_ >= 0) close(fd_);
  }
  int Release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

}  // namespace

absl::StatusOr<MultiLoopMode> ParseMultiLoopMode(absl::string_view name) {
  if (name == "reuseport") return MultiLoopMode::kReusePort;
  if (name == "handoff") return MultiLoopMode::kHandoff;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown multi-loop mode \"", name, "\" (reuseport or handoff)"));
}

absl::string_view MultiLoopModeName(MultiLoopMode mode) {
  return mode == MultiLoopMode::kReusePort ? "reuseport" : "handoff";
}

// What the loops' callbacks share with the server; kept alive by them, so a callback
// still queued on a loop never reaches a destroyed server.
struct MultiLoopTCPServer::Shared {
  Shared(std::vector<IOLoop*> loops, HandleStream handle_stream, IOStream::Options stream_options)
      : loops(std::move(loops)),
        handle_stream(std::move(handle_stream)),
        stream_options(stream_options),
        per_loop(new std::atomic<uint64_t>[this->loops.size()]) {
    for (size_t i = 0; i < this->loops.size(); ++i) per_loop[i].store(0);
  }

  // Deliver() gives connection `fd` to the application on loop `i`'s thread.
  void Deliver(size_t i, int fd, const SocketAddress& peer) {
    if (stopped.load(std::memory_order_acquire)) {
      close(fd);  // Stop() has begun: handle_stream must not be called any more.
      return;
    }
    per_loop[i].fetch_add(1, std::memory_order_relaxed);
    handle_stream(i, std::make_unique<IOStream>(loops[i], fd, stream_options), peer);
  }

  const std::vector<IOLoop*> loops;
  HandleStream handle_stream;
  const IOStream::Options stream_options;
  std::atomic<bool> stopped{false};
  std::unique_ptr<std::atomic<uint64_t>[]> per_loop;
};

MultiLoopTCPServer::MultiLoopTCPServer(LoopThreadPool* pool, HandleStream handle_stream,
                                       MultiLoopServerOptions options)
    : pool_(pool), options_(std::move(options)) {
  IOLOOP_CHECK(options_.acceptor_index < pool_->size(),
               "MultiLoopTCPServer: acceptor_index is not a thread of the pool");
  shared_ =
      std::make_shared<Shared>(pool_->loops(), std::move(handle_stream), options_.stream_options);
}

MultiLoopTCPServer::~MultiLoopTCPServer() { Stop(); }

absl::Status MultiLoopTCPServer::Listen(int port, absl::string_view address) {
  if (listened_) {
    return absl::FailedPreconditionError("MultiLoopTCPServer::Listen: already listening");
  }
  listened_ = true;
  const bool reuse_port = options_.mode == MultiLoopMode::kReusePort;
  // kReusePort: one socket (set) per loop, the first one choosing the port when
  // `port` is 0 and the others joining its SO_REUSEPORT group.
  const size_t sets = reuse_port ? pool_->size() : 1;
  for (size_t s = 0; s < sets; ++s) {
    absl::StatusOr<std::vector<int>> fds =
        BindSockets(s == 0 ? port : port_, address, options_.backlog, reuse_port);
    if (!fds.ok()) {
      Stop();
      return fds.status();
    }
    const size_t loop_index = reuse_port ? s : options_.acceptor_index;
    for (int fd : *fds) listeners_.push_back(Listener{loop_index, fd, nullptr});
    if (s == 0) {
      absl::StatusOr<SocketAddress> local = LocalAddress(fds->front());
      if (!local.ok()) {
        Stop();
        return local.status();
      }
      port_ = local->Port();
    }
  }
  for (Listener& listener : listeners_) {
    if (absl::Status s = StartAccepting(listener.loop_index, listener.fd); !s.ok()) {
      Stop();
      return s;
    }
  }
  return absl::OkStatus();
}

absl::Status MultiLoopTCPServer::StartAccepting(size_t loop_index, int fd) {
  AcceptOptions accept_options = options_.accept_options;
  accept_options.stats = nullptr;  // Each listener counts on its own thread.
  AcceptCallback on_accept;
  if (options_.mode == MultiLoopMode::kReusePort) {
    on_accept = [shared = shared_, loop_index](int fd, const SocketAddress& peer) {
      shared->Deliver(loop_index, fd, peer);
    };
  } else {
    // Exact round-robin: the counter lives in the acceptor's handler, on its thread.
    on_accept = [shared = shared_, pool = pool_, acceptor = loop_index, next = size_t{0}](
                    int fd, const SocketAddress& peer) mutable {
      const size_t target = next++ % shared->loops.size();
      if (target == acceptor) {
        shared->Deliver(target, fd, peer);
        return;
      }
      // Refused (the target stopped): the callback is destroyed and closes the fd.
      pool->thread(target).AddCallback([shared, target, fd = AcceptedFd(fd), peer]() mutable {
        shared->Deliver(target, fd.Release(), peer);
      });
    };
  }
  absl::Status added;
  Listener* listener = nullptr;
  for (Listener& l : listeners_) {
    if (l.fd == fd) listener = &l;
  }
  absl::Status ran = pool_->thread(loop_index).RunAndWait([&] {
    absl::StatusOr<absl::AnyInvocable<void()>> remover =
        AddAcceptHandler(pool_->loop(loop_index), fd, std::move(on_accept), accept_options);
    if (remover.ok()) {
      listener->remove = *std::move(remover);
    } else {
      added = remover.status();
    }
  });
  if (!ran.ok()) return ran;
  return added;
}

void MultiLoopTCPServer::Stop() {
  shared_->stopped.store(true, std::memory_order_release);
  for (Listener& listener : listeners_) {
    if (!listener.remove) continue;
    // A loop that no longer runs has dropped its handlers already (IOLoop::Close).
    pool_->thread(listener.loop_index).RunAndWait([&] { listener.remove(); }).IgnoreError();
  }
  // A barrier on every loop: a Deliver() running now finishes before it, and handoffs
  // queued before it see `stopped` and close their fd. After this, handle_stream is
  // never called again.
  if (!listeners_.empty()) {
    for (size_t i = 0; i < pool_->size(); ++i) pool_->thread(i).RunAndWait([] {}).IgnoreError();
  }
  for (Listener& listener : listeners_) close(listener.fd);
  listeners_.clear();
}

std::vector<uint64_t> MultiLoopTCPServer::ConnectionsPerLoop() const {
  std::vector<uint64_t> counts(shared_->loops.size());
  for (size_t i = 0; i < counts.size(); ++i) {
    counts[i] = shared_->per_loop[i].load(std::memory_order_relaxed);
  }
  return counts;
}

}  // namespace ioloop
