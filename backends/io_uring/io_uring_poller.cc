#include "backends/io_uring/io_uring_poller.h"

#include <liburing.h>
#include <poll.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "backends/completion_io.h"
#include "backends/internal/backend_util.h"
#include "base/errno_status.h"

namespace ioloop {
namespace {

constexpr absl::string_view kName = "io_uring";
constexpr unsigned kSqEntries = 256;
// Completions can outnumber the submission queue (every registered fd may complete in
// one wait); the kernel keeps any excess in its overflow list (IORING_FEAT_NODROP).
constexpr unsigned kCqEntries = 4096;
constexpr int kParkedBatch = 64;

// user_data: a poll's is (generation << 32 | fd); the parking epoll set's poll uses
// fd -1. Generations are process-wide and never 0, so a stale completion left in a
// reused ring (see RingPool) never matches a later poller's registration either.
constexpr uint64_t kControlData = 0;  // poll updates and removals

uint64_t PollData(int fd, uint32_t generation) {
  return (uint64_t{generation} << 32) | static_cast<uint32_t>(fd);
}

// A poll update's own completion (posted only if it failed): bit 31 of the fd half,
// which a real fd never has, marks it.
constexpr uint32_t kUpdateBit = 0x80000000u;
uint64_t UpdateData(int fd, uint32_t generation) {
  return (uint64_t{generation} << 32) | (static_cast<uint32_t>(fd) | kUpdateBit);
}

// A CompletionIo operation's user_data is (id << 32 | kOpMarker): no fd (nor fd with
// kUpdateBit) has the low half all ones but the last bit, and the parking set's is -1.
constexpr uint32_t kOpMarker = 0xfffffffeu;
uint64_t OpData(uint32_t id) { return (uint64_t{id} << 32) | kOpMarker; }

// The most iovecs one send takes from its Cord.
constexpr int kMaxSendIovecs = 64;
// The most io_uring_get_events() calls one Reap() makes for pending task work.
constexpr int kMaxReapRounds = 1024;
// Receive buffers and operation records kept for reuse: enough for every stream whose
// receive completed in one batch to re-arm from the free list.
constexpr size_t kMaxFreeBuffers = 256;
constexpr size_t kMaxFreeOps = 256;
// How long ~IoUringPoller waits for the kernel to let go of cancelled operations.
constexpr int64_t kCancelWaitNanos = 2'000'000'000;

uint32_t NextGeneration() {
  static std::atomic<uint32_t> last{0};
  uint32_t g = last.fetch_add(1, std::memory_order_relaxed) + 1;
  while (g == 0) g = last.fetch_add(1, std::memory_order_relaxed) + 1;
  return g;
}

unsigned ToPoll(EventMask events) {
  unsigned e = 0;  // io_uring always adds POLLERR, POLLHUP, POLLNVAL and POLLRDHUP.
  if (events & kRead) e |= POLLIN;
  if (events & kWrite) e |= POLLOUT;
  return e;
}

// Also maps epoll's bits, which have poll's values (EPOLLIN == POLLIN, ...).
EventMask FromPoll(unsigned e) {
  EventMask m = kNone;
  if (e & (POLLIN | POLLPRI)) m |= kRead;
  if (e & POLLOUT) m |= kWrite;
  if (e & (POLLERR | POLLHUP | POLLNVAL)) m |= kError;
  return m;
}

int64_t MonotonicNanos() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

// Why io_uring_setup() failed, in words an operator can act on.
absl::Status SetupFailure(int error, unsigned entries, const io_uring_params& params) {
  std::string why;
  switch (error) {
    case ENOSYS:
      why =
          "this kernel has no io_uring (too old, or built without it), or a seccomp "
          "profile hides the system call";
      break;
    case EPERM:
    case EACCES: {
      int disabled = -1;
      if (FILE* f = std::fopen("/proc/sys/kernel/io_uring_disabled", "re")) {
        if (std::fscanf(f, "%d", &disabled) != 1) disabled = -1;
        std::fclose(f);
      }
      if (disabled == 2) {
        why = "disabled for every process by sysctl kernel.io_uring_disabled=2";
      } else if (disabled == 1) {
        why =
            "sysctl kernel.io_uring_disabled=1 and this process is not in "
            "kernel.io_uring_group";
      } else {
        why = "refused by a seccomp profile or security module";
      }
      break;
    }
    case ENOMEM: {
      io_uring_params p = params;
      const ssize_t needed = io_uring_mlock_size_params(entries, &p);
      rlimit limit{};
      getrlimit(RLIMIT_MEMLOCK, &limit);
      why = absl::StrCat(
          "the ring needs ", needed, " bytes of locked memory; RLIMIT_MEMLOCK is ",
          limit.rlim_cur == RLIM_INFINITY ? std::string("unlimited") : absl::StrCat(limit.rlim_cur),
          " bytes (kernels before 5.12 charge rings to it)");
      break;
    }
    default:
      return absl::UnavailableError(
          absl::StrCat(ErrnoStatus(error, "io_uring: io_uring_setup").message()));
  }
  return absl::UnavailableError(
      absl::StrCat(ErrnoStatus(error, "io_uring: io_uring_setup").message(), ": ", why));
}

// What this kernel offers, probed once per process.
struct KernelSupport {
  absl::Status status;             // OK, or why the backend cannot run here.
  unsigned setup_flags = 0;        // Optional IORING_SETUP_* flags the kernel accepts.
  unsigned sqe_control_flags = 0;  // IOSQE_CQE_SKIP_SUCCESS where the kernel has it.
  bool updates_work = false;       // A poll update that makes the poll ready completes it.
};

// The optional setup flags, best first; the first set the kernel accepts is used.
// TASKRUN_FLAG makes the kernel say (IORING_SQ_TASKRUN) when completions wait in task
// work that a wait does not run all at once (it runs a bounded batch per call).
constexpr unsigned kFlagChoices[] = {
    IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG | IORING_SETUP_SUBMIT_ALL |
        IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
    IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG | IORING_SETUP_SUBMIT_ALL,
    0,
};

// CreateRing() sets up `ring` with `flags`; a SINGLE_ISSUER ring starts disabled, so
// that the thread that first polls (not the one that constructed it) becomes its
// submitter. Returns 0 or a negative errno.
int CreateRing(io_uring& ring, unsigned flags, io_uring_params& params) {
  params = {};
  params.flags = flags | IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP;
  if (flags & IORING_SETUP_SINGLE_ISSUER) params.flags |= IORING_SETUP_R_DISABLED;
  params.cq_entries = kCqEntries;
  return io_uring_queue_init_params(kSqEntries, &ring, &params);
}

// CreateRingOffThread() is CreateRing() on a short-lived thread. The kernel remembers
// every task that created or submitted to a ring, and destroying the ring queues task
// work on each, which interrupts that task's next blocking epoll_wait() with EINTR; a
// thread that only constructs a poller (and runs it elsewhere) should not pay that.
// A seccomp filter on the calling thread is inherited, so refusals still show.
int CreateRingOffThread(io_uring& ring, unsigned flags, io_uring_params& params) {
  int ret = 0;
  std::thread([&] { ret = CreateRing(ring, flags, params); }).join();
  return ret;
}

// RingPool keeps up to two enabled rings per thread for reuse, for the same reason:
// a loop destroyed and created again on one thread (tests, restarts) neither pays a
// ring set-up nor gets its thread interrupted. The rings close when the thread exits.
class RingPool {
 public:
  static constexpr size_t kMaxPerThread = 2;
  ~RingPool() {
    for (io_uring& ring : rings_) io_uring_queue_exit(&ring);
  }
  bool Take(io_uring& ring) {
    if (rings_.empty()) return false;
    ring = rings_.back();
    rings_.pop_back();
    return true;
  }
  bool Give(const io_uring& ring) {
    if (rings_.size() >= kMaxPerThread) return false;
    rings_.push_back(ring);
    return true;
  }
  static RingPool& ForThisThread() {
    thread_local RingPool pool;
    return pool;
  }

 private:
  std::vector<io_uring> rings_;
};

// EnableRing() starts a ring created disabled. liburing 2.3 declares
// io_uring_enable_rings() but does not export it, hence the raw registration call.
int EnableRing(io_uring& ring) {
  if (!(ring.flags & IORING_SETUP_R_DISABLED)) return 0;
  return io_uring_register(ring.ring_fd, IORING_REGISTER_ENABLE_RINGS, nullptr, 0);
}

// Whether a poll update that makes a poll ready posts that poll's completion (some
// stable kernels lost it); if not, Modify() removes and re-adds instead.
bool ProbeUpdates(io_uring& ring) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) < 0) return false;
  const uint64_t data = PollData(sv[0], 2);
  const uint64_t updated = PollData(sv[0], 3);
  bool update_ok = false, poll_ok = false;
  if (io_uring_sqe* sqe = io_uring_get_sqe(&ring)) {
    io_uring_prep_poll_add(sqe, sv[0], POLLIN);
    io_uring_sqe_set_data64(sqe, data);
    io_uring_submit_and_get_events(&ring);
  }
  if (io_uring_sqe* sqe = io_uring_get_sqe(&ring)) {
    io_uring_prep_poll_update(sqe, data, updated, POLLOUT,
                              IORING_POLL_UPDATE_EVENTS | IORING_POLL_UPDATE_USER_DATA);
    io_uring_sqe_set_data64(sqe, kControlData);
    io_uring_submit_and_get_events(&ring);
    io_uring_get_events(&ring);
  }
  unsigned head, seen = 0;
  io_uring_cqe* cqe;
  io_uring_for_each_cqe(&ring, head, cqe) {
    if (cqe->user_data == kControlData) update_ok = cqe->res == 0;
    if (cqe->user_data == updated) poll_ok = cqe->res > 0 && (cqe->res & POLLOUT);
    ++seen;
  }
  io_uring_cq_advance(&ring, seen);
  close(sv[0]);
  close(sv[1]);
  return update_ok && poll_ok;
}

KernelSupport Probe() {
  KernelSupport support;
  io_uring ring;
  io_uring_params params;
  int ret = -EINVAL;
  for (unsigned flags : kFlagChoices) {
    ret = CreateRing(ring, flags, params);
    support.setup_flags = flags;
    if (ret != -EINVAL) break;  // EINVAL: a flag this kernel does not know.
  }
  if (ret < 0) {
    support.status = SetupFailure(-ret, kSqEntries, params);
    return support;
  }
  if (!(params.features & IORING_FEAT_EXT_ARG) || !(params.features & IORING_FEAT_NODROP)) {
    support.status = absl::UnavailableError(
        "io_uring: this kernel lacks IORING_FEAT_EXT_ARG (timed waits; Linux 5.11+)");
  } else if (int e = EnableRing(ring); e < 0) {
    support.status = absl::UnavailableError(
        ErrnoStatus(-e, "io_uring: io_uring_register(ENABLE_RINGS)").message());
  } else {
    if (params.features & IORING_FEAT_CQE_SKIP) support.sqe_control_flags = IOSQE_CQE_SKIP_SUCCESS;
    support.updates_work = ProbeUpdates(ring);
  }
  io_uring_queue_exit(&ring);
  return support;
}

// The probe runs on a thread of its own: destroying a ring makes the kernel queue task
// work on every thread that used it, which interrupts that thread's next blocking
// epoll_wait() with EINTR, and the caller's thread should not pay for a probe.
const KernelSupport& Support() {
  static const KernelSupport* const support = [] {
    auto* result = new KernelSupport;
    std::thread([result] { *result = Probe(); }).join();
    return result;
  }();
  return *support;
}

class IoUringPoller final : public Poller, public CompletionIo {
 public:
  // `enabled`: the ring came from this thread's pool, enabled and owned by it.
  IoUringPoller(const KernelSupport& support, const io_uring& ring, bool enabled)
      : support_(support), ring_(ring), enabled_(enabled), owner_(pthread_self()) {}

  ~IoUringPoller() override {
    if (ring_valid_) {
      // Remove every armed poll (each holds a reference to its file), then hand the
      // ring to this thread's pool if this thread owns it; close it otherwise.
      bool reusable = enabled_ && pthread_equal(owner_, pthread_self());
      // Operations in the kernel point into buffers owned here: cancel them and wait
      // for their final completions before freeing anything.
      if (reusable && in_kernel_ops_ > 0) reusable = CancelAllOps();
      if (reusable) {
        for (size_t fd = 0; fd < slots_.size(); ++fd) {
          if (slots_[fd].in_kernel)
            removals_.push_back(PollData(static_cast<int>(fd), slots_[fd].generation));
        }
        if (parking_in_kernel_) removals_.push_back(parking_data_);
        reusable = SubmitRemovals() == 0 && RingPool::ForThisThread().Give(ring_);
      }
      if (!reusable) io_uring_queue_exit(&ring_);
    }
    if (parking_fd_ >= 0) close(parking_fd_);
    // Callbacks of operations never run are destroyed here, buffers freed with them.
    ops_.clear();
    graveyard_.clear();
  }

  // --- CompletionIo ---------------------------------------------------------------

  CompletionIo* completion_io() override { return this; }

  OpId Recv(int fd, size_t max_bytes, RecvCallback done) override {
    std::unique_ptr<Op> op = NewOp(fd, /*is_send=*/false);
    op->size = max_bytes;  // The buffer is taken when the receive is submitted.
    op->recv_done = std::move(done);
    return AddOp(std::move(op));
  }

  OpId Send(int fd, absl::Cord data, SendCallback done) override {
    std::unique_ptr<Op> op = NewOp(fd, /*is_send=*/true);
    op->data = std::move(data);
    op->send_done = std::move(done);
    return AddOp(std::move(op));
  }

  bool Cancel(OpId id) override {
    auto it = ops_.find(static_cast<uint32_t>(id));
    if (it == ops_.end()) return false;
    Op& op = *it->second;
    if (op.state == OpState::kQueued) {  // Never reached the kernel.
      RecycleOp(std::move(it->second));
      ops_.erase(it);
      return true;
    }
    if (op.state == OpState::kDone) {  // Finished, its callback not yet run.
      RecycleOp(std::move(it->second));
      ops_.erase(it);
      return false;
    }
    if (op.cancelled) return false;
    // In the kernel: the callback goes now, the buffers once the kernel lets go.
    op.cancelled = true;
    RecvCallback recv_done = std::move(op.recv_done);
    SendCallback send_done = std::move(op.send_done);
    if (ring_valid_ && enabled_ && pthread_equal(owner_, pthread_self())) {
      if (io_uring_sqe* sqe = ControlSqe()) {
        io_uring_prep_cancel64(sqe, OpData(op.id), 0);
        NoCompletionOnSuccess(sqe);
        // Submitted now, so that the operation drops its file reference before the
        // caller close()s the fd.
        io_uring_submit_and_get_events(&ring_);
      }
    }
    return false;
  }

  size_t RunCompleted(Runner run) override {
    size_t ran = 0;
    for (size_t n = completed_.size(); n > 0 && !completed_.empty(); --n) {
      const uint32_t id = completed_.front();
      completed_.pop_front();
      auto it = ops_.find(id);
      if (it == ops_.end()) continue;  // Cancelled after it finished.
      std::unique_ptr<Op> op = std::move(it->second);
      ops_.erase(it);
      ++ran;
      if (op->is_send) {
        run([&] { op->send_done(op->result); });
      } else {
        const absl::string_view data(op->buffer.get(),
                                     op->result > 0 ? static_cast<size_t>(op->result) : 0);
        run([&] { op->recv_done(op->result, data); });
      }
      RecycleOp(std::move(op));
    }
    return ran;
  }

  absl::Status Register(int fd, EventMask events) override {
    if (auto s = backend_internal::CheckArguments(kName, "Register", fd, events); !s.ok()) return s;
    if (Registered(fd)) return backend_internal::AlreadyRegistered(kName, fd);
    // The poll is submitted later; see a closed fd now, as the other backends do.
    if (!backend_internal::IsOpen(fd)) return ErrnoStatus(EBADF, "io_uring: Register", fd);
    if (static_cast<size_t>(fd) >= slots_.size()) slots_.resize(fd + 1);
    Slot& s = slots_[fd];
    const bool queued = s.queued;
    s = Slot{};
    s.queued = queued;
    s.generation = NextGeneration();
    s.mask = events;
    Queue(fd);
    ++count_;
    return absl::OkStatus();
  }

  absl::Status Modify(int fd, EventMask events) override {
    if (auto s = backend_internal::CheckArguments(kName, "Modify", fd, events); !s.ok()) return s;
    if (!Registered(fd)) return backend_internal::NotRegistered(kName, "Modify", fd);
    Slot& s = slots_[fd];
    s.mask = events;
    s.dead = false;  // A Modify() tries again an fd found closed (reported again if so).
    if (s.parked) {
      if (!(events & kRead)) {
        epoll_event ev = EpollEvent(fd, events);
        if (epoll_ctl(parking_fd_, EPOLL_CTL_MOD, fd, &ev) == 0) return absl::OkStatus();
      }
      Unpark(fd);  // Watching kRead again: the half-close reads as EOF, so poll it.
    }
    Queue(fd);
    return absl::OkStatus();
  }

  absl::Status Unregister(int fd) override {
    if (fd < 0 || !Registered(fd)) return backend_internal::NotRegistered(kName, "Unregister", fd);
    Slot& s = slots_[fd];
    const bool armed = s.in_kernel;
    if (armed) removals_.push_back(PollData(fd, s.generation));
    if (armed && s.prev_generation != 0) removals_.push_back(PollData(fd, s.prev_generation));
    if (s.parked) Unpark(fd);
    const bool queued = s.queued;
    s = Slot{};
    s.queued = queued;  // Still listed in dirty_; Flush() skips it.
    --count_;
    // An armed poll holds a reference to the file: remove it now, so that a close()
    // right after Unregister() really closes (a listening socket stops accepting).
    if (armed) {
      if (int error = SubmitRemovals(); error != 0) {
        return ErrnoStatus(error, "io_uring: Unregister: io_uring_enter", fd);
      }
    }
    return absl::OkStatus();
  }

  absl::Status Poll(absl::Duration timeout, std::vector<PollEvent>& ready) override {
    if (ABSL_PREDICT_FALSE(!ring_valid_)) {
      if (absl::Status s = Rebuild(); !s.ok()) return s;
    }
    if (ABSL_PREDICT_FALSE(!enabled_ || !pthread_equal(owner_, pthread_self()))) {
      if (absl::Status s = Adopt(); !s.ok()) return s;
    }
    const size_t before = ready.size();
    const bool forever = timeout == absl::InfiniteDuration();
    const bool no_wait = !forever && timeout <= absl::ZeroDuration();
    int64_t deadline = 0;
    if (!forever && !no_wait) {
      const int64_t ns = absl::ToInt64Nanoseconds(absl::Ceil(timeout, absl::Nanoseconds(1)));
      const int64_t now = MonotonicNanos();
      deadline = ns > INT64_MAX - now ? INT64_MAX : now + ns;
    }
    // Every round submits, waits and reaps. An fd reported in this Poll() is re-armed
    // only on the next one (rearm_next_), so no fd is reported twice in one Poll().
    dirty_.insert(dirty_.end(), rearm_next_.begin(), rearm_next_.end());
    rearm_next_.clear();
    parking_deferred_ = false;
    int rebuilds = 0;
    int extra_rounds = 0;
    while (true) {
      int error = Flush();
      bool block = !no_wait && ready.size() == before && completed_.empty();
      int64_t left = -1;
      if (error == 0 && block && !forever) {
        left = deadline - MonotonicNanos();
        if (left <= 0) block = false;
      }
      if (error == 0) {
        if (block) {
          __kernel_timespec ts{left / 1'000'000'000, left % 1'000'000'000};
          io_uring_cqe* cqe = nullptr;
          error =
              -io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, forever ? nullptr : &ts, nullptr);
        } else {
          error = -io_uring_submit_and_get_events(&ring_);
        }
      }
      bool interrupted = false;
      switch (error) {
        case EINTR:
          interrupted = true;
          break;
        case EEXIST:  // Another task owns this SINGLE_ISSUER ring (a fork, a new thread).
        case EBADR:   // The kernel dropped completions: resynchronise every fd.
          if (++rebuilds > 2) return ErrnoStatus(error, "io_uring: io_uring_enter", ring_.ring_fd);
          if (absl::Status s = Rebuild(); !s.ok()) return s;
          continue;
        case EBUSY:   // Older kernels: the completion queue is full; reaping makes room.
        case EAGAIN:  // Out of request memory for now; try again on the next round.
        case ETIME:
          break;
        default:
          if (error > 0) return ErrnoStatus(error, "io_uring: io_uring_enter", ring_.ring_fd);
      }
      Reap(ready);
      if (ABSL_PREDICT_FALSE(dropped_)) {  // EBADR seen while reaping the overflow.
        dropped_ = false;
        if (++rebuilds > 2) return ErrnoStatus(EBADR, "io_uring: io_uring_enter", ring_.ring_fd);
        if (absl::Status s = Rebuild(); !s.ok()) return s;
        if (ready.size() == before) continue;
      }
      if (interrupted) return absl::OkStatus();
      const bool reported = ready.size() > before || !completed_.empty();
      if (!dirty_.empty()) {
        // Completions that only need re-arming (armed for a mask since changed): do it
        // now, so this Poll() reports what is ready for the current mask. Without
        // waiting if something is reported already; waiting again otherwise.
        if (reported || !block) {
          if (extra_rounds++ < 2) continue;
          return absl::OkStatus();
        }
        continue;
      }
      if (reported || !block) return absl::OkStatus();
      if (!forever && MonotonicNanos() >= deadline) return absl::OkStatus();
    }
  }

  absl::string_view Name() const override { return kName; }

 private:
  enum class OpState : uint8_t { kQueued, kInKernel, kDone };
  // Op is one CompletionIo operation, owned by ops_ from Recv()/Send() until its
  // callback ran or it was cancelled and the kernel let go of it.
  struct Op {
    uint32_t id = 0;
    int fd = -1;
    bool is_send = false;
    bool cancelled = false;  // Cancelled while in the kernel: waits for its completion.
    OpState state = OpState::kQueued;
    int result = 0;
    size_t size = 0;                 // Recv: the buffer's size.
    std::unique_ptr<char[]> buffer;  // Recv: where the kernel writes.
    absl::Cord data;                 // Send: the bytes (iov points into it).
    iovec iov[kMaxSendIovecs];
    msghdr message{};
    RecvCallback recv_done;
    SendCallback send_done;
  };

  // Receive buffers are recycled (a stream asks for the same size again and again).
  std::unique_ptr<char[]> TakeBuffer(size_t size) {
    for (size_t i = free_buffers_.size(); i-- > 0;) {
      if (free_buffers_[i].second != size) continue;
      std::unique_ptr<char[]> buffer = std::move(free_buffers_[i].first);
      free_buffers_[i] = std::move(free_buffers_.back());
      free_buffers_.pop_back();
      return buffer;
    }
    return std::unique_ptr<char[]>(new char[size]);  // Uninitialised: the kernel fills it.
  }
  void GiveBuffer(std::unique_ptr<char[]> buffer, size_t size) {
    if (buffer != nullptr && free_buffers_.size() < kMaxFreeBuffers) {
      free_buffers_.emplace_back(std::move(buffer), size);
    }
  }

  // NewOp() returns a fresh operation record, recycled where one is spare (a stream
  // makes one per receive and per send).
  std::unique_ptr<Op> NewOp(int fd, bool is_send) {
    std::unique_ptr<Op> op;
    if (free_ops_.empty()) {
      op = std::make_unique<Op>();
    } else {
      op = std::move(free_ops_.back());
      free_ops_.pop_back();
    }
    op->fd = fd;
    op->is_send = is_send;
    op->cancelled = false;
    op->state = OpState::kQueued;
    op->result = 0;
    op->size = 0;
    return op;
  }
  // RecycleOp() ends an operation whose kernel part is over (or never began): its
  // callbacks and bytes are released now, its receive buffer and record kept for reuse.
  void RecycleOp(std::unique_ptr<Op> op) {
    GiveBuffer(std::move(op->buffer), op->size);
    op->recv_done = nullptr;
    op->send_done = nullptr;
    op->data.Clear();
    if (free_ops_.size() < kMaxFreeOps) free_ops_.push_back(std::move(op));
  }

  OpId AddOp(std::unique_ptr<Op> op) {
    uint32_t id;
    do {
      id = ++last_op_id_;
    } while (id == 0 || ops_.contains(id));
    op->id = id;
    ops_.emplace(id, std::move(op));
    queued_ops_.push_back(id);
    return id;
  }

  // QueueOps() puts every queued operation in the submission queue. Returns 0 or an
  // errno (the operations not queued stay for the next round).
  int QueueOps() {
    submit_error_ = 0;
    size_t done = 0;
    for (; done < queued_ops_.size(); ++done) {
      auto it = ops_.find(queued_ops_[done]);
      if (it == ops_.end() || it->second->state != OpState::kQueued) continue;  // Cancelled.
      Op& op = *it->second;
      io_uring_sqe* sqe = GetSqe();
      if (sqe == nullptr) break;
      if (op.is_send) {
        int count = 0;
        for (absl::string_view chunk : op.data.Chunks()) {
          op.iov[count].iov_base = const_cast<char*>(chunk.data());
          op.iov[count].iov_len = chunk.size();
          if (++count == kMaxSendIovecs) break;
        }
        op.message = {};
        op.message.msg_iov = op.iov;
        op.message.msg_iovlen = static_cast<decltype(op.message.msg_iovlen)>(count);
        io_uring_prep_sendmsg(sqe, op.fd, &op.message, MSG_NOSIGNAL);
      } else {
        // Taken now rather than in Recv(): a stream re-arms its receive from the
        // callback of the last one, whose buffer is free again only after it.
        if (op.buffer == nullptr) op.buffer = TakeBuffer(op.size);
        io_uring_prep_recv(sqe, op.fd, op.buffer.get(), op.size, 0);
      }
      io_uring_sqe_set_data64(sqe, OpData(op.id));
      op.state = OpState::kInKernel;
      ++in_kernel_ops_;
    }
    queued_ops_.erase(queued_ops_.begin(), queued_ops_.begin() + static_cast<ptrdiff_t>(done));
    return submit_error_;
  }

  // CompleteOp() takes an operation's completion.
  void CompleteOp(uint32_t id, int res) {
    auto it = ops_.find(id);
    if (it == ops_.end() || it->second->state != OpState::kInKernel) return;  // Stale.
    --in_kernel_ops_;
    if (it->second->cancelled) {
      RecycleOp(std::move(it->second));  // The kernel let go of the buffers.
      ops_.erase(it);
      return;
    }
    it->second->state = OpState::kDone;
    it->second->result = res;
    completed_.push_back(id);
  }

  // AbandonOps() is for a ring about to be closed with operations in it: each one's
  // caller gets -ECANCELED (and may try again on the new ring), while its buffers are
  // kept until the poller goes, since the old ring's cancellation runs asynchronously.
  void AbandonOps() {
    for (auto& [id, op] : ops_) {
      if (op->state != OpState::kInKernel) continue;
      auto husk = std::make_unique<Op>();
      std::swap(husk->buffer, op->buffer);
      std::swap(husk->data, op->data);
      graveyard_.push_back(std::move(husk));
      if (op->cancelled) continue;  // Erased below.
      op->state = OpState::kDone;
      op->result = -ECANCELED;
      op->size = 0;
      completed_.push_back(id);
    }
    absl::erase_if(ops_, [](const auto& entry) { return entry.second->cancelled; });
    in_kernel_ops_ = 0;
  }

  // CancelAllOps() cancels every operation in the kernel and waits (boundedly) for
  // their final completions. False if some were not seen (the ring must then not be
  // reused, and AbandonOps() keeps their buffers).
  bool CancelAllOps() {
    for (auto& [id, op] : ops_) {
      if (op->state != OpState::kInKernel || op->cancelled) continue;
      op->cancelled = true;
      io_uring_sqe* sqe = ControlSqe();
      if (sqe == nullptr) break;
      io_uring_prep_cancel64(sqe, OpData(id), 0);
      NoCompletionOnSuccess(sqe);
    }
    const int64_t deadline = MonotonicNanos() + kCancelWaitNanos;
    std::vector<PollEvent> ignored;
    while (in_kernel_ops_ > 0) {
      const int64_t left = deadline - MonotonicNanos();
      if (left <= 0) break;
      __kernel_timespec ts{left / 1'000'000'000, left % 1'000'000'000};
      io_uring_cqe* cqe = nullptr;
      const int ret = io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
      if (ret < 0 && ret != -EINTR && ret != -ETIME && ret != -EBUSY && ret != -EAGAIN) break;
      Reap(ignored);
    }
    if (in_kernel_ops_ == 0) return true;
    AbandonOps();
    return false;
  }

  struct Slot {
    uint32_t generation = 0;  // 0: not registered.
    // The generation before the last poll update, whose outcome may be unknown: a
    // completion under it means the update lost a race with the poll firing.
    uint32_t prev_generation = 0;
    EventMask prev_armed = kNone;  // What the poll watched before that update.
    EventMask mask = kNone;        // What the user watches.
    EventMask armed = kNone;       // What the poll in the kernel watches (if in_kernel).
    bool in_kernel = false;        // A poll with PollData(fd, generation) is submitted.
    bool queued = false;           // Listed in dirty_.
    bool dead = false;             // Found closed and reported: not re-armed.
    bool parked = false;           // Watched through parking_fd_ (see Park()).
  };

  bool Registered(int fd) const {
    return static_cast<size_t>(fd) < slots_.size() && slots_[fd].generation != 0;
  }

  void Queue(int fd) {
    Slot& s = slots_[fd];
    if (s.queued) return;
    s.queued = true;
    dirty_.push_back(fd);
  }

  // QueueNext() re-arms `fd` on the next Poll() (it was reported in this one).
  void QueueNext(int fd) {
    Slot& s = slots_[fd];
    if (s.queued) return;
    s.queued = true;
    rearm_next_.push_back(fd);
  }

  static epoll_event EpollEvent(int fd, EventMask events) {
    epoll_event ev{};
    ev.events = ToPoll(events);  // Same values as EPOLLIN/EPOLLOUT; no EPOLLRDHUP.
    ev.data.fd = fd;
    return ev;
  }

  // Adopt() makes the calling thread the ring's submitter: enables a new ring, or
  // rebuilds one another thread owned (SINGLE_ISSUER rings accept only their owner).
  absl::Status Adopt() {
    if (enabled_ && (ring_.flags & IORING_SETUP_SINGLE_ISSUER)) return Rebuild();
    if (!enabled_) {
      if (int e = EnableRing(ring_); e < 0) {
        return ErrnoStatus(-e, "io_uring: io_uring_register(ENABLE_RINGS)", ring_.ring_fd);
      }
      enabled_ = true;
    }
    owner_ = pthread_self();
    return absl::OkStatus();
  }

  // Rebuild() replaces the ring with a new one owned by this thread and re-arms every
  // registration. Closing the old ring cancels its polls, so none of its completions
  // can arrive later.
  absl::Status Rebuild() {
    AbandonOps();  // Their callers try again on the new ring.
    if (ring_valid_) io_uring_queue_exit(&ring_);
    ring_valid_ = false;
    enabled_ = false;
    io_uring_params params;
    if (int ret = CreateRingOffThread(ring_, support_.setup_flags, params); ret < 0) {
      return SetupFailure(-ret, kSqEntries, params);  // The next Poll() tries again.
    }
    ring_valid_ = true;
    if (int e = EnableRing(ring_); e < 0) {
      return ErrnoStatus(-e, "io_uring: io_uring_register(ENABLE_RINGS)", ring_.ring_fd);
    }
    enabled_ = true;
    owner_ = pthread_self();
    removals_.clear();
    parking_in_kernel_ = false;
    for (size_t fd = 0; fd < slots_.size(); ++fd) {
      Slot& s = slots_[fd];
      s.in_kernel = false;
      s.prev_generation = 0;
      if (s.generation != 0) Queue(static_cast<int>(fd));
    }
    return absl::OkStatus();
  }

  // SubmitRemovals() submits the queued removals now, and runs the completions they
  // cause, which drops the removed polls' file references. Returns 0 or an errno.
  int SubmitRemovals() {
    if (removals_.empty() || !ring_valid_) return 0;
    if (!enabled_ || !pthread_equal(owner_, pthread_self())) {
      // Another thread's ring: Adopt() rebuilds it (the new ring holds none of these
      // polls) or, for a ring any thread may use, takes it over.
      if (!Adopt().ok()) return EIO;
      if (removals_.empty()) return 0;
    }
    if (const int error = QueueRemovals(); error != 0) return error;
    const int ret = io_uring_submit_and_get_events(&ring_);
    if (ret == -EEXIST) return Rebuild().ok() ? 0 : EEXIST;
    return ret < 0 && ret != -EINTR && ret != -EBUSY && ret != -EAGAIN ? -ret : 0;
  }

  // GetSqe() returns a free submission entry, submitting the full queue first if
  // needed; nullptr (and the errno in submit_error_) if that submission failed.
  io_uring_sqe* GetSqe() {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    if (ABSL_PREDICT_TRUE(sqe != nullptr)) return sqe;
    if (int ret = io_uring_submit(&ring_); ret < 0) {
      submit_error_ = -ret;
      return nullptr;
    }
    return io_uring_get_sqe(&ring_);
  }

  io_uring_sqe* ControlSqe() {
    io_uring_sqe* sqe = GetSqe();
    if (sqe != nullptr) io_uring_sqe_set_data64(sqe, kControlData);
    return sqe;
  }

  // NoCompletionOnSuccess() is called after the io_uring_prep_*() call, which clears
  // the flags: updates and removals then post a completion only when they fail.
  void NoCompletionOnSuccess(io_uring_sqe* sqe) {
    io_uring_sqe_set_flags(sqe, support_.sqe_control_flags);
  }

  // QueueRemovals() puts a poll removal for every entry of removals_ in the submission
  // queue and clears it. Returns 0 or an errno.
  int QueueRemovals() {
    submit_error_ = 0;
    for (uint64_t data : removals_) {
      io_uring_sqe* sqe = ControlSqe();
      if (sqe == nullptr) return submit_error_;
      io_uring_prep_poll_remove(sqe, data);
      NoCompletionOnSuccess(sqe);
    }
    removals_.clear();
    return 0;
  }

  // Flush() queues the removals, then a poll (or poll update) for every fd whose
  // kernel state differs from what the user wants. Returns 0 or an errno.
  int Flush() {
    if (const int error = QueueRemovals(); error != 0) return error;
    if (!queued_ops_.empty()) {
      if (const int error = QueueOps(); error != 0) return error;
    }
    size_t done = 0;
    for (; done < dirty_.size(); ++done) {
      const int fd = dirty_[done];
      Slot& s = slots_[fd];
      if (s.generation == 0 || s.dead || s.parked || (s.in_kernel && s.armed == s.mask)) {
        s.queued = false;
        continue;
      }
      if (s.in_kernel && support_.updates_work) {
        io_uring_sqe* sqe = ControlSqe();
        if (sqe == nullptr) break;
        // The update also renames the poll: its completion then says which mask fired.
        const uint32_t old_generation = s.generation;
        s.prev_generation = old_generation;
        s.prev_armed = s.armed;
        s.generation = NextGeneration();
        io_uring_sqe_set_data64(sqe, UpdateData(fd, s.generation));
        io_uring_prep_poll_update(sqe, PollData(fd, old_generation), PollData(fd, s.generation),
                                  ToPoll(s.mask),
                                  IORING_POLL_UPDATE_EVENTS | IORING_POLL_UPDATE_USER_DATA);
        NoCompletionOnSuccess(sqe);
      } else {
        if (s.in_kernel) {  // No working poll update: remove, then add under a new generation.
          io_uring_sqe* sqe = ControlSqe();
          if (sqe == nullptr) break;
          io_uring_prep_poll_remove(sqe, PollData(fd, s.generation));
          NoCompletionOnSuccess(sqe);
          s.in_kernel = false;
          s.generation = NextGeneration();
        }
        io_uring_sqe* sqe = GetSqe();
        if (sqe == nullptr) break;
        io_uring_prep_poll_add(sqe, fd, ToPoll(s.mask));
        io_uring_sqe_set_data64(sqe, PollData(fd, s.generation));
        s.in_kernel = true;
        s.prev_generation = 0;
      }
      s.armed = s.mask;
      s.queued = false;
    }
    dirty_.erase(dirty_.begin(), dirty_.begin() + static_cast<ptrdiff_t>(done));
    if (submit_error_ != 0) return submit_error_;
    if (parked_count_ > 0 && !parking_in_kernel_ && !parking_deferred_) {
      io_uring_sqe* sqe = GetSqe();
      if (sqe == nullptr) return submit_error_;
      io_uring_prep_poll_add(sqe, parking_fd_, POLLIN);
      parking_data_ = PollData(-1, NextGeneration());
      io_uring_sqe_set_data64(sqe, parking_data_);
      parking_in_kernel_ = true;
    }
    return 0;
  }

  // Reap() consumes every completion, including any the kernel holds in its overflow
  // list or in pending task work, and appends what is reportable to `ready`.
  void Reap(std::vector<PollEvent>& ready) {
    for (int round = 0;; ++round) {
      unsigned head, seen = 0;
      io_uring_cqe* cqe;
      io_uring_for_each_cqe(&ring_, head, cqe) {
        Complete(cqe->user_data, cqe->res, ready);
        ++seen;
      }
      io_uring_cq_advance(&ring_, seen);
      const unsigned flags = IO_URING_READ_ONCE(*ring_.sq.kflags);
      if (!(flags & (IORING_SQ_CQ_OVERFLOW | IORING_SQ_TASKRUN))) return;
      // Bounded: what is left waits for the next Poll() (whose wait runs task work
      // first), so a flag the kernel keeps raising never pins the loop here.
      if (round == kMaxReapRounds) return;
      // Runs pending task work and moves the overflow into the ring.
      const int ret = io_uring_get_events(&ring_);
      if (ret == -EBADR) dropped_ = true;
      // EINTR: task work for this thread (not the ring's) is pending; it runs on the
      // way back to user space, so the next Poll() will find its effects.
      if (ret < 0 && ret != -EAGAIN && ret != -EBUSY) return;
    }
  }

  void Complete(uint64_t data, int res, std::vector<PollEvent>& ready) {
    // An update or removal that failed found its poll already completed (ENOENT,
    // EALREADY); that poll's own completion tells the story.
    if (data == kControlData) return;
    if (static_cast<uint32_t>(data) == kOpMarker) {
      CompleteOp(static_cast<uint32_t>(data >> 32), res);
      return;
    }
    if (data == parking_data_) {
      parking_in_kernel_ = false;
      HarvestParked(ready);
      return;
    }
    const uint32_t low = static_cast<uint32_t>(data & 0xffffffffu);
    const int fd = static_cast<int>(low & ~kUpdateBit);
    const uint32_t generation = static_cast<uint32_t>(data >> 32);
    if (static_cast<size_t>(fd) >= slots_.size()) return;
    Slot& s = slots_[fd];
    if (!s.in_kernel || s.generation == 0) return;  // Stale: removed or reused.
    if (low & kUpdateBit) {
      // The update did not apply (ENOENT: the poll completed first, and its completion
      // under the old name came earlier; EALREADY: a wake-up owns the poll, which may
      // complete under the old name or go back to waiting with the old mask).
      if (res >= 0 || generation != s.generation || s.prev_generation == 0) return;
      s.generation = s.prev_generation;
      s.armed = s.prev_armed;
      s.prev_generation = 0;
      Queue(fd);  // Try the update again (or re-add, if the poll completes meanwhile).
      return;
    }
    if (generation != s.generation) {
      if (generation != s.prev_generation) return;  // Stale: removed or reused.
      // The poll fired under its old mask before the update reached it: what it saw
      // is not the whole story for the current mask. Re-arm at once, report nothing.
      s.in_kernel = false;
      s.prev_generation = 0;
      Queue(fd);
      return;
    }
    s.in_kernel = false;
    s.prev_generation = 0;
    if (s.armed != s.mask && res != -ECANCELED && res >= 0) {
      // Armed for another mask (an update that did not apply): re-arm, report nothing.
      Queue(fd);
      return;
    }
    if (res < 0) {
      if (res == -ECANCELED) {  // Cancelled under us (an update that could not re-arm).
        Queue(fd);
        return;
      }
      // EBADF: closed before its poll was submitted. Report it once; a Modify() retries.
      s.dead = true;
      ready.push_back({fd, kError | (s.mask & (kRead | kWrite))});
      return;
    }
    const unsigned bits = static_cast<unsigned>(res);
    const EventMask found = FromPoll(bits) & (s.mask | kError);
    if (found != kNone) {
      ready.push_back({fd, backend_internal::WithWatchedOnError(found, s.mask)});
      QueueNext(fd);
    } else if ((bits & POLLRDHUP) && !(s.mask & kRead)) {
      Park(fd, ready);
    } else {
      Queue(fd);  // Armed for bits no longer watched: re-arm with the current mask.
    }
  }

  // Park() watches `fd` through an internal epoll set. io_uring reports a peer's
  // half-close (POLLRDHUP) to every poll, whatever its mask, so re-arming an fd not
  // watched for kRead would complete at once, forever; epoll reports it only if asked.
  void Park(int fd, std::vector<PollEvent>& ready) {
    Slot& s = slots_[fd];
    if (parking_fd_ < 0) parking_fd_ = epoll_create1(EPOLL_CLOEXEC);
    epoll_event ev = EpollEvent(fd, s.mask);
    if (parking_fd_ < 0 || epoll_ctl(parking_fd_, EPOLL_CTL_ADD, fd, &ev) < 0) {
      if (parking_fd_ >= 0 && errno == EBADF) {
        s.dead = true;
        ready.push_back({fd, kError | (s.mask & (kRead | kWrite))});
      } else {
        Queue(fd);  // No epoll set: degrade to re-arming.
      }
      return;
    }
    s.parked = true;
    ++parked_count_;
  }

  void Unpark(int fd) {
    epoll_event unused{};
    epoll_ctl(parking_fd_, EPOLL_CTL_DEL, fd, &unused);  // EBADF/ENOENT: already gone.
    slots_[fd].parked = false;
    --parked_count_;
  }

  void HarvestParked(std::vector<PollEvent>& ready) {
    epoll_event events[kParkedBatch];
    const int n = epoll_wait(parking_fd_, events, kParkedBatch, 0);
    parking_deferred_ = n > 0;  // Reported: look again on the next Poll(), not this one.
    for (int i = 0; i < n; ++i) {
      const int fd = events[i].data.fd;
      if (!Registered(fd) || !slots_[fd].parked) continue;
      const EventMask mask = slots_[fd].mask;
      const EventMask found = FromPoll(events[i].events) & (mask | kError);
      if (found != kNone) {
        ready.push_back({fd, backend_internal::WithWatchedOnError(found, mask)});
      }
    }
  }

  const KernelSupport& support_;
  io_uring ring_;
  bool enabled_;  // Enabled, with owner_ its submitter.
  pthread_t owner_;
  bool ring_valid_ = true;  // False after a Rebuild() failed to create a ring.
  bool dropped_ = false;    // The kernel reported dropped completions (EBADR).
  std::vector<Slot> slots_;
  size_t count_ = 0;
  std::vector<int> dirty_;          // fds whose kernel poll must be added or updated.
  std::vector<int> rearm_next_;     // fds reported by this Poll(), re-armed by the next.
  std::vector<uint64_t> removals_;  // polls to remove (unregistered fds).
  int submit_error_ = 0;
  int parking_fd_ = -1;
  size_t parked_count_ = 0;
  bool parking_in_kernel_ = false;
  bool parking_deferred_ = false;         // The parking set reported in this Poll().
  uint64_t parking_data_ = kControlData;  // user_data of the parking set's poll.

  // CompletionIo state.
  absl::flat_hash_map<uint32_t, std::unique_ptr<Op>> ops_;  // Every live operation.
  std::vector<uint32_t> queued_ops_;                        // Ids to submit on the next Flush().
  std::vector<std::unique_ptr<Op>> free_ops_;               // Spare records (NewOp()).
  std::deque<uint32_t> completed_;                          // Ids finished, callbacks not yet run.
  std::vector<std::unique_ptr<Op>> graveyard_;  // Buffers an abandoned ring may still use.
  std::vector<std::pair<std::unique_ptr<char[]>, size_t>> free_buffers_;
  size_t in_kernel_ops_ = 0;
  uint32_t last_op_id_ = 0;
};

}  // namespace

absl::Status IoUringSupport() { return Support().status; }

absl::StatusOr<std::unique_ptr<Poller>> NewIoUringPoller() {
  const KernelSupport& support = Support();
  if (!support.status.ok()) return support.status;
  io_uring ring;
  if (RingPool::ForThisThread().Take(ring)) {
    return std::unique_ptr<Poller>(new IoUringPoller(support, ring, /*enabled=*/true));
  }
  io_uring_params params;
  if (int ret = CreateRingOffThread(ring, support.setup_flags, params); ret < 0) {
    return SetupFailure(-ret, kSqEntries, params);
  }
  return std::unique_ptr<Poller>(new IoUringPoller(support, ring, /*enabled=*/false));
}

}  // namespace ioloop
