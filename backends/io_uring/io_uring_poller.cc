#include "backends/io_uring/io_uring_poller.h"

#include <liburing.h>
#include <poll.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "absl/strings/str_cat.h"
#include "backends/completion_io.h"
#include "backends/internal/backend_util.h"
#include "base/check.h"
#include "base/errno_status.h"
#include "base/mutex.h"

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
// Operation records kept for reuse: at least this many, and as many as are in use (a
// send per stream comes and goes every round trip, so a server with N streams needs
// about N spare records not to allocate one per send).
constexpr size_t kMinFreeOps = 256;
// The provided-buffer ring every multishot receive picks from: up to enough buffers
// for a batch of 1,000 sockets each receiving a message. It starts with
// kInitialRecvBuffers and doubles whenever receives find it empty (ENOBUFS); they
// re-arm once the batch's buffers are back.
constexpr unsigned kRecvBuffers = 1024;  // A power of two, at most 32768.
constexpr unsigned kInitialRecvBuffers = 64;
constexpr size_t kRecvBufferSize = 2048;
constexpr uint16_t kRecvBufferGroup = 0;
// A multishot receive that got this many runs of bytes since it was armed is re-armed
// when it drains the socket: the kernel caps the receives one arming makes in a row
// and requeues the rest, and a requeued receive can miss an EOF that was already
// pending when it drained the socket (it waits for a wake-up that came earlier). A
// fresh receive sees that EOF at once.
constexpr uint32_t kRearmAfterRuns = 16;
// A std::string capacity that is always on the heap (past any short-string buffer).
constexpr size_t kMinHeapCopy = 4 * sizeof(std::string);
// Bytes a paused receive keeps beyond which its spare capacity is given back.
constexpr size_t kMaxKeptHeldCapacity = 64 * 1024;
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
  bool buffer_rings = false;       // Provided-buffer rings and multishot receives (5.19+).
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

// RecvBufferPool is a provided-buffer ring: up to `count` buffers of `size` bytes, from
// which the kernel takes one for every run of bytes a multishot receive gets. The
// memory is mapped, not touched: a buffer costs memory once the kernel first writes to
// it. The kernel takes buffers in ring order, so every buffer in the ring gets
// touched under load; the ring therefore starts with a few and grows (Grow()) only
// when a receive finds it empty.
class RecvBufferPool {
 public:
  static std::unique_ptr<RecvBufferPool> Create(unsigned count, size_t size) {
    auto pool = std::unique_ptr<RecvBufferPool>(new RecvBufferPool(count, size));
    if (pool->ring_ == nullptr || pool->base_ == nullptr) return nullptr;
    return pool;
  }
  ~RecvBufferPool() {
    if (ring_ != nullptr) munmap(ring_, RingBytes());
    if (base_ != nullptr) munmap(base_, count_ * size_);
  }
  RecvBufferPool(const RecvBufferPool&) = delete;
  RecvBufferPool& operator=(const RecvBufferPool&) = delete;

  // Register() registers the ring with `ring` under kRecvBufferGroup and hands it
  // `initial` buffers. Returns 0 or a negative errno.
  int Register(io_uring& ring, unsigned initial) {
    io_uring_buf_reg reg{};
    reg.ring_addr = reinterpret_cast<uintptr_t>(ring_);
    reg.ring_entries = count_;
    reg.bgid = kRecvBufferGroup;
    if (int ret = io_uring_register_buf_ring(&ring, &reg, 0); ret < 0) return ret;
    io_uring_buf_ring_init(ring_);
    population_ = 0;
    AddBuffers(std::min(initial, count_));
    return 0;
  }
  // Grow() doubles the buffers in the ring, up to `count` (none once all are in).
  void Grow() { AddBuffers(std::min(population_, count_ - population_)); }
  // Population() is how many buffers are in the ring (in it or out with receives).
  unsigned Population() const { return population_; }
  // Give() returns buffer `bid`, which the kernel filled, to the ring.
  void Give(uint16_t bid) {
    io_uring_buf_ring_add(ring_, Buffer(bid), static_cast<unsigned>(size_), bid, mask_, 0);
    io_uring_buf_ring_advance(ring_, 1);
  }
  absl::string_view Data(uint16_t bid, size_t length) const {
    return absl::string_view(Buffer(bid), length);
  }

 private:
  RecvBufferPool(unsigned count, size_t size)
      : count_(count), size_(size), mask_(io_uring_buf_ring_mask(count)) {
    void* ring =
        mmap(nullptr, RingBytes(), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    void* base =
        mmap(nullptr, count_ * size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ring_ = ring == MAP_FAILED ? nullptr : static_cast<io_uring_buf_ring*>(ring);
    base_ = base == MAP_FAILED ? nullptr : static_cast<char*>(base);
  }
  size_t RingBytes() const { return count_ * sizeof(io_uring_buf); }
  void AddBuffers(unsigned n) {
    for (unsigned i = 0; i < n; ++i) {
      const unsigned bid = population_ + i;
      io_uring_buf_ring_add(ring_, Buffer(bid), static_cast<unsigned>(size_),
                            static_cast<uint16_t>(bid), mask_, static_cast<int>(i));
    }
    io_uring_buf_ring_advance(ring_, static_cast<int>(n));
    population_ += n;
  }
  char* Buffer(unsigned bid) const { return base_ + size_t{bid} * size_; }

  const unsigned count_;
  const size_t size_;
  const int mask_;
  unsigned population_ = 0;  // Buffers 0 to population_ - 1 are in the ring.
  io_uring_buf_ring* ring_ = nullptr;
  char* base_ = nullptr;
};

// KeepForever() keeps `pools` mapped for the life of the process.
void KeepForever(std::vector<std::unique_ptr<RecvBufferPool>> pools) {
  if (pools.empty()) return;
  static auto* mutex = new Mutex;
  static auto* kept = new std::vector<std::unique_ptr<RecvBufferPool>>;
  MutexLock lock(*mutex);
  for (auto& pool : pools) kept->push_back(std::move(pool));
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

// SetMultishotLimit() caps the bytes one arming of a multishot receive takes (the
// kernel ends it with the buffer that reaches `limit`). liburing 2.3 predates the
// field's name (optlen); it shares file_index's place in the entry.
void SetMultishotLimit(io_uring_sqe* sqe, uint32_t limit) { sqe->file_index = limit; }

// Whether multishot receives into a provided-buffer ring work, with a byte limit per
// arming: 200 bytes waiting, buffers of 64, a limit of 64 must give one run of 64
// that ends the arming, and leave the rest in the socket.
bool ProbeMultishotRecv(io_uring& ring) {
  auto pool = RecvBufferPool::Create(4, 64);
  if (pool == nullptr || pool->Register(ring, 4) != 0) return false;
  int sv[2];
  int runs = 0;
  bool limited = false;
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) == 0) {
    const char bytes[200] = {};
    if (write(sv[1], bytes, sizeof bytes) == static_cast<ssize_t>(sizeof bytes)) {
      if (io_uring_sqe* sqe = io_uring_get_sqe(&ring)) {
        io_uring_prep_recv_multishot(sqe, sv[0], nullptr, 0, 0);
        sqe->flags |= IOSQE_BUFFER_SELECT;
        sqe->buf_group = kRecvBufferGroup;
        SetMultishotLimit(sqe, 64);
        io_uring_sqe_set_data64(sqe, 1);
        io_uring_submit_and_get_events(&ring);
        io_uring_get_events(&ring);
      }
    }
    unsigned head, seen = 0;
    io_uring_cqe* cqe;
    io_uring_for_each_cqe(&ring, head, cqe) {
      if (cqe->user_data == 1) {
        ++runs;
        limited = cqe->res == 64 && !(cqe->flags & IORING_CQE_F_MORE) &&
                  (cqe->flags & IORING_CQE_F_BUFFER);
      }
      ++seen;
    }
    io_uring_cq_advance(&ring, seen);
    close(sv[1]);
    close(sv[0]);
  }
  return io_uring_unregister_buf_ring(&ring, kRecvBufferGroup) == 0 && runs == 1 && limited;
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
    support.buffer_rings = ProbeMultishotRecv(ring);
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
  IoUringPoller(const KernelSupport& support, const io_uring& ring, bool enabled,
                unsigned recv_buffers)
      : support_(support),
        ring_(ring),
        enabled_(enabled),
        owner_(pthread_self()),
        recv_buffers_(recv_buffers) {}

  ~IoUringPoller() override {
    if (ring_valid_) {
      // Remove every armed poll (each holds a reference to its file), then hand the
      // ring to this thread's pool if this thread owns it; close it otherwise.
      bool reusable = enabled_ && pthread_equal(owner_, pthread_self());
      // Operations in the kernel point into buffers owned here: cancel them and wait
      // for their final completions before freeing anything.
      if (reusable && in_kernel_ops_ > 0) reusable = CancelAllOps();
      // The next owner of the ring registers buffers of its own.
      if (reusable && pool_registered_ == ring_.ring_fd) {
        reusable = io_uring_unregister_buf_ring(&ring_, kRecvBufferGroup) == 0;
      }
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
    // Receive buffers the kernel may still write to: those of a ring closed with
    // receives in it (its teardown runs asynchronously) are kept, not unmapped.
    if (in_kernel_ops_ > 0 && pool_ != nullptr) graveyard_pools_.push_back(std::move(pool_));
    KeepForever(std::move(graveyard_pools_));
    // Callbacks of operations never run are destroyed here, buffers freed with them.
    ops_.clear();
    graveyard_.clear();
    pool_.reset();
  }

  // --- CompletionIo ---------------------------------------------------------------

  CompletionIo* completion_io() override { return support_.buffer_rings ? this : nullptr; }

  OpId RecvMany(int fd, size_t max_bytes, RecvManyCallback done) override {
    Op& op = NewOp(fd, /*is_send=*/false);
    op.limit = static_cast<uint32_t>(std::clamp<size_t>(max_bytes, 1, UINT32_MAX));
    op.recv_done = std::move(done);
    QueueOp(op);
    return op.id;
  }

  OpId Send(int fd, absl::Cord data, SendCallback done) override {
    Op& op = NewOp(fd, /*is_send=*/true);
    op.data = std::move(data);
    op.send_done = std::move(done);
    QueueOp(op);
    return op.id;
  }

  OpId SendCopy(int fd, absl::string_view data, SendCallback done) override {
    IOLOOP_CHECK(!data.empty() && data.size() <= kMaxSendCopyBytes,
                 "CompletionIo::SendCopy: 1 to kMaxSendCopyBytes bytes");
    Op& op = NewOp(fd, /*is_send=*/true);
    // On the heap (past the short-string buffer), so that AbandonOps() can hand the
    // bytes to a husk without moving them.
    op.copy.reserve(std::max(data.size(), kMinHeapCopy));
    op.copy.assign(data.data(), data.size());
    op.send_done = std::move(done);
    QueueOp(op);
    return op.id;
  }

  void Pause(OpId id) override {
    Op* op = FindOp(id);
    // An ended receive pauses too: its end (and the bytes before it) wait for Resume().
    if (op == nullptr || op->is_send || op->paused || op->cancelled) return;
    Pause(*op);
  }

  void Resume(OpId id) override {
    Op* op = FindOp(id);
    if (op == nullptr || op->is_send || op->cancelled) return;
    op->resumed = true;  // Cancels the pause of a callback that takes less (Deliver()).
    if (!op->paused) return;
    op->paused = false;
    if (op->HasWaiting() || op->ended) List(*op);
    if (!op->in_kernel && !op->ended) QueueOp(*op);  // Else re-armed at its final completion.
  }

  bool Cancel(OpId id) override {
    Op* op = FindOp(id);
    if (op == nullptr) return false;
    if (!op->in_kernel) {
      // Never reached the kernel, or its kernel part is over: nothing more can come.
      const bool untouched = op->is_send && !op->finished;
      EraseOp(*op);
      return untouched;
    }
    if (op->cancelled) return false;
    // In the kernel: the callback goes now, the buffers once the kernel lets go.
    op->cancelled = true;
    op->recv_done = nullptr;
    op->send_done = nullptr;
    DropReceived(*op);
    if (ring_valid_ && enabled_ && pthread_equal(owner_, pthread_self())) {
      CancelInKernel(*op);  // Queued already if a pause or a re-arm asked for it.
      // Submitted now, so that the operation drops its file reference before the
      // caller close()s the fd.
      if (op->cancel_sent) io_uring_submit_and_get_events(&ring_);
    }
    return false;
  }

  size_t RunCompleted(Runner run) override {
    size_t ran = 0;
    // What callbacks list meanwhile runs next time (completed_ grows behind `end`).
    const size_t end = completed_.size();
    for (size_t i = 0; i < end; ++i) {
      const OpId id = completed_[i];
      Op* op = FindOp(id);
      if (op == nullptr) continue;  // Cancelled after it finished.
      op->listed = false;
      if (op->is_send) {
        if (!op->finished) continue;
        SendCallback done = std::move(op->send_done);
        const int result = op->result;
        EraseOp(*op);
        run([&] { done(result); });
        ++ran;
      } else {
        ran += Deliver(id, *op, run);
      }
    }
    completed_.erase(completed_.begin(), completed_.begin() + static_cast<ptrdiff_t>(end));
    // Receives that found the buffer ring empty re-arm now that the batch's buffers
    // are back.
    RequeueStarved();
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
    bool requeued_starved = false;
    while (true) {
      // Receives starved of buffers by an earlier round, once per Poll(): no batch
      // holds any buffer now.
      if (!starved_.empty() && completed_.empty() && !requeued_starved) {
        RequeueStarved();
        requeued_starved = true;
      }
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
  // Op is one CompletionIo operation. It lives in ops_[slot] from RecvMany()/Send()
  // until its callback ran for the last time or it was cancelled, and in both cases
  // until the kernel let go of it; its record is then kept for the next operation.
  struct Op {
    struct Received {  // A run of bytes in a buffer of pool_.
      uint16_t bid;
      uint32_t length;
    };
    // Bytes waiting for the callback: `held` first (a pause's, copied out of the
    // pool), then `received`.
    bool HasWaiting() const { return held_offset < held.size() || !received.empty(); }

    OpId id = 0;  // 0: the record is free.
    int fd = -1;
    bool is_send = false;
    bool in_kernel = false;    // The kernel may still post completions for it.
    bool queued = false;       // Listed in queued_ops_ (to submit).
    bool listed = false;       // Listed in completed_ (to run).
    bool cancelled = false;    // Cancelled while in the kernel: waits for its completion.
    bool cancel_sent = false;  // A cancellation of its kernel part is submitted.
    // Send.
    bool finished = false;
    int result = 0;
    absl::Cord data;   // The bytes (iov points into it), or
    std::string copy;  // SendCopy()'s (capacity kept for the record's next use).
    absl::InlinedVector<iovec, 4> iov;
    msghdr message{};
    SendCallback send_done;
    // RecvMany.
    bool paused = false;
    bool resumed = false;  // Resume() was called during its callback.
    uint32_t runs = 0;     // Runs of bytes since it was armed.
    uint32_t limit = 0;    // Bytes per arming.
    bool ended = false;    // The receive is over: end_result is for the callback.
    int end_result = 0;
    std::vector<Received> received;
    std::string held;
    size_t held_offset = 0;
    RecvManyCallback recv_done;
  };

  // Op ids: the record's slot in the low kSlotBits, a sequence number above. The low 32
  // bits go in user_data (OpData()), enough to tell an operation from the slot's
  // earlier ones, since a slot is reused only once the kernel let go of it.
  static constexpr int kSlotBits = 20;
  static constexpr OpId kSlotMask = (OpId{1} << kSlotBits) - 1;

  Op* FindOp(OpId id) {
    const OpId slot = id & kSlotMask;
    if (id == 0 || slot >= ops_.size()) return nullptr;
    Op* op = ops_[slot].get();
    return op != nullptr && op->id == id ? op : nullptr;
  }
  Op* FindOpByData(uint32_t key) {
    const OpId slot = key & kSlotMask;
    if (slot >= ops_.size()) return nullptr;
    Op* op = ops_[slot].get();
    return op != nullptr && op->id != 0 && static_cast<uint32_t>(op->id) == key ? op : nullptr;
  }

  Op& NewOp(int fd, bool is_send) {
    uint32_t slot;
    if (!free_slots_.empty()) {
      slot = free_slots_.back();
      free_slots_.pop_back();
    } else {
      slot = static_cast<uint32_t>(ops_.size());
      IOLOOP_CHECK(slot <= kSlotMask, "io_uring: over a million socket operations at once");
      ops_.emplace_back();
    }
    if (ops_[slot] == nullptr) ops_[slot] = std::make_unique<Op>();
    ++live_ops_;
    Op& op = *ops_[slot];
    if (++op_sequence_ == 0) ++op_sequence_;
    op.id = (op_sequence_ << kSlotBits) | slot;
    op.fd = fd;
    op.is_send = is_send;
    return op;
  }

  // EraseOp() ends an operation whose kernel part is over (or never began): its
  // callbacks, bytes and buffers are released now, its record kept for reuse.
  void EraseOp(Op& op) {
    IOLOOP_DCHECK(!op.in_kernel, "io_uring: an operation erased while in the kernel");
    DropReceived(op);
    const uint32_t slot = static_cast<uint32_t>(op.id & kSlotMask);
    op.id = 0;
    op.fd = -1;
    op.queued = op.listed = op.cancelled = op.cancel_sent = false;
    op.finished = op.paused = op.resumed = op.ended = false;
    op.runs = 0;
    op.result = op.end_result = 0;
    if (!op.data.empty()) op.data.Clear();
    op.copy.clear();
    op.iov.clear();
    op.send_done = nullptr;
    op.recv_done = nullptr;
    free_slots_.push_back(slot);
    --live_ops_;
    if (free_slots_.size() > std::max(kMinFreeOps, live_ops_)) ops_[slot] = nullptr;
  }

  // DropReceived() gives back what a receive holds that its callback will not get.
  void DropReceived(Op& op) {
    for (const Op::Received& r : op.received) pool_->Give(r.bid);
    op.received.clear();
    op.held.clear();
    op.held_offset = 0;
    if (op.held.capacity() > kMaxKeptHeldCapacity) op.held.shrink_to_fit();
  }

  void QueueOp(Op& op) {
    if (op.queued) return;
    op.queued = true;
    queued_ops_.push_back(op.id);
  }

  // List() puts `op` in completed_, for RunCompleted().
  void List(Op& op) {
    if (op.listed) return;
    op.listed = true;
    completed_.push_back(op.id);
  }

  // Pause() stops a receive whose callback took less than it was given. What it
  // received and has not delivered is copied out, so that its buffers come back.
  void Pause(Op& op) {
    op.paused = true;
    for (const Op::Received& r : op.received) {
      Hold(op, pool_->Data(r.bid, r.length));
      pool_->Give(r.bid);
    }
    op.received.clear();
    CancelInKernel(op);
  }

  // CancelInKernel() asks the kernel to end `op`, with the next Poll()'s submission.
  void CancelInKernel(Op& op) {
    if (!op.in_kernel || op.cancel_sent) return;
    if (io_uring_sqe* sqe = ControlSqe()) {
      io_uring_prep_cancel64(sqe, OpData(static_cast<uint32_t>(op.id)), 0);
      NoCompletionOnSuccess(sqe);
      op.cancel_sent = true;
    }
  }

  // Hold() copies what a paused receive was given but did not take, and what arrives
  // before the kernel stops, out of the pool, so that pool buffers always come back.
  void Hold(Op& op, absl::string_view bytes) {
    if (op.held_offset == op.held.size()) {
      op.held.clear();
      op.held_offset = 0;
    }
    op.held.append(bytes.data(), bytes.size());
  }

  // Deliver() hands a receive's waiting bytes, then its end, to its callback, and
  // returns how many calls it made. The callback may cancel the operation, start
  // others, or pause or resume this one. The bytes are delivered from scratch lists
  // the callback cannot reach, so whatever it does leaves them valid for its call.
  size_t Deliver(OpId id, Op& op, Runner run) {
    if (op.paused) return 0;  // Pause() kept its bytes; Resume() lists it again.
    RecvManyCallback done = std::move(op.recv_done);
    bool alive = true;
    size_t calls = 0;
    // Offer() hands `bytes` to the callback until it took them all, or the operation
    // paused or went; returns what is left. Taking less pauses, unless the callback
    // resumed the operation meanwhile (it made room): then the rest is offered at once.
    auto offer = [&](absl::string_view bytes) -> absl::string_view {
      while (!bytes.empty()) {
        op.resumed = false;
        size_t taken = 0;
        run([&] { taken = done(static_cast<int>(bytes.size()), bytes); });
        ++calls;
        const Op* now = FindOp(id);
        alive = now != nullptr && !now->cancelled;
        if (!alive) return absl::string_view();
        bytes.remove_prefix(std::min(taken, bytes.size()));
        if (op.paused) break;
        if (!bytes.empty() && !op.resumed) {
          Pause(op);
          break;
        }
      }
      return bytes;
    };
    if (op.held_offset < op.held.size()) {
      delivering_held_.swap(op.held);
      const size_t offset = std::exchange(op.held_offset, 0);
      op.held.clear();
      const absl::string_view rest = offer(absl::string_view(delivering_held_).substr(offset));
      if (alive && !rest.empty()) {
        // Paused: the rest goes back in front of what Pause() copied out meanwhile.
        std::string kept(rest);
        kept.append(op.held, op.held_offset, std::string::npos);
        op.held = std::move(kept);
        op.held_offset = 0;
      }
      delivering_held_.clear();
      if (delivering_held_.capacity() > kMaxKeptHeldCapacity) delivering_held_.shrink_to_fit();
    }
    if (alive && !op.received.empty()) {
      delivering_.swap(op.received);
      // The pool these buffers are in, even if a callback rebuilds the ring meanwhile
      // (AbandonOps() keeps it alive; giving a buffer back to it is then harmless).
      RecvBufferPool* const pool = pool_.get();
      for (const Op::Received& r : delivering_) {
        const absl::string_view bytes = pool->Data(r.bid, r.length);
        if (alive && op.paused) {
          Hold(op, bytes);
        } else if (alive) {
          const absl::string_view rest = offer(bytes);
          if (alive && !rest.empty()) Hold(op, rest);
        }
        pool->Give(r.bid);
      }
      delivering_.clear();
    }
    if (alive && !op.paused && op.ended && !op.HasWaiting()) {
      run([&] { done(op.end_result, absl::string_view()); });
      ++calls;
      if (Op* now = FindOp(id); now != nullptr && !now->in_kernel) EraseOp(*now);
      return calls;
    }
    if (alive) op.recv_done = std::move(done);
    return calls;
  }

  // RequeueStarved() re-arms the receives that found the ring empty and still want
  // bytes, after doubling the buffers in it (up to all of them): once per batch,
  // however many starved.
  void RequeueStarved() {
    bool grown = false;
    for (OpId id : starved_) {
      Op* op = FindOp(id);
      if (op != nullptr && !op->in_kernel && !op->paused && !op->ended && !op->cancelled) {
        if (!grown && pool_ != nullptr && pool_registered_ == ring_.ring_fd) pool_->Grow();
        grown = true;
        QueueOp(*op);
      }
    }
    starved_.clear();
  }

  friend unsigned ::ioloop::IoUringRecvBuffersForTesting(Poller& poller);

  // QueueOps() puts every queued operation in the submission queue. Returns 0 or an
  // errno (the operations not queued stay for the next round).
  int QueueOps() {
    submit_error_ = 0;
    size_t done = 0;
    for (; done < queued_ops_.size(); ++done) {
      Op* found = FindOp(queued_ops_[done]);
      if (found == nullptr || !found->queued) continue;  // Cancelled.
      Op& op = *found;
      if (op.paused) {  // Paused since it was queued: Resume() queues it again.
        op.queued = false;
        continue;
      }
      if (!op.is_send && pool_registered_ != ring_.ring_fd) {
        if (const int error = RegisterPool(); error != 0) {
          // No buffers for any receive: each one ends with the reason.
          op.queued = false;
          op.ended = true;
          op.end_result = -error;
          List(op);
          continue;
        }
      }
      io_uring_sqe* sqe = GetSqe();
      if (sqe == nullptr) break;
      if (op.is_send) {
        op.iov.clear();
        if (!op.copy.empty()) {
          op.iov.push_back({op.copy.data(), op.copy.size()});
        } else {
          for (absl::string_view chunk : op.data.Chunks()) {
            op.iov.push_back({const_cast<char*>(chunk.data()), chunk.size()});
            if (op.iov.size() == kMaxSendIovecs) break;
          }
        }
        op.message = {};
        op.message.msg_iov = op.iov.data();
        op.message.msg_iovlen = static_cast<decltype(op.message.msg_iovlen)>(op.iov.size());
        io_uring_prep_sendmsg(sqe, op.fd, &op.message, MSG_NOSIGNAL);
      } else {
        io_uring_prep_recv_multishot(sqe, op.fd, nullptr, 0, 0);
        SetMultishotLimit(sqe, op.limit);
        op.runs = 0;
        sqe->flags |= IOSQE_BUFFER_SELECT;
        sqe->buf_group = kRecvBufferGroup;
      }
      io_uring_sqe_set_data64(sqe, OpData(static_cast<uint32_t>(op.id)));
      op.queued = false;
      op.in_kernel = true;
      ++in_kernel_ops_;
    }
    queued_ops_.erase(queued_ops_.begin(), queued_ops_.begin() + static_cast<ptrdiff_t>(done));
    return submit_error_;
  }

  // RegisterPool() gives the ring its provided buffers (a new set after a rebuild: the
  // old ring may still write to the old one). Returns 0 or an errno.
  int RegisterPool() {
    if (pool_ != nullptr && pool_registered_ != -1) graveyard_pools_.push_back(std::move(pool_));
    if (pool_ == nullptr) pool_ = RecvBufferPool::Create(recv_buffers_, kRecvBufferSize);
    if (pool_ == nullptr) return ENOMEM;
    if (const int ret = pool_->Register(ring_, kInitialRecvBuffers); ret < 0) return -ret;
    pool_registered_ = ring_.ring_fd;
    return 0;
  }

  // CompleteOp() takes one of an operation's completions.
  void CompleteOp(uint32_t key, int res, unsigned flags) {
    Op* found = FindOpByData(key);
    if (found == nullptr || !found->in_kernel) return;  // Stale.
    Op& op = *found;
    const bool last = !(flags & IORING_CQE_F_MORE);
    if (flags & IORING_CQE_F_BUFFER) {
      const uint16_t bid = static_cast<uint16_t>(flags >> IORING_CQE_BUFFER_SHIFT);
      if (res <= 0 || op.cancelled) {
        pool_->Give(bid);
      } else if (op.paused) {
        Hold(op, pool_->Data(bid, static_cast<size_t>(res)));
        pool_->Give(bid);
      } else {
        op.received.push_back({bid, static_cast<uint32_t>(res)});
      }
      if (!last && ++op.runs >= kRearmAfterRuns && !(flags & IORING_CQE_F_SOCK_NONEMPTY)) {
        CancelInKernel(op);  // Re-armed at its final completion (kRearmAfterRuns).
      }
    }
    if (last) {
      op.in_kernel = false;
      op.cancel_sent = false;
      --in_kernel_ops_;
      if (op.cancelled) {
        EraseOp(op);  // The kernel let go of the buffers.
        return;
      }
      if (op.is_send) {
        op.finished = true;
        op.result = res;
      } else if (res == 0 || (res < 0 && res != -ECANCELED && res != -ENOBUFS && res != -EINTR &&
                              res != -EAGAIN)) {
        op.ended = true;  // EOF or an error: after the bytes before it.
        op.end_result = res;
      } else if (res == -ENOBUFS) {
        starved_.push_back(op.id);
      } else if (!op.paused) {
        QueueOp(op);  // Stopped by a pause since resumed, or by the kernel: go on.
      }
    }
    if (op.is_send ? op.finished : (!op.paused && (op.HasWaiting() || op.ended))) List(op);
  }

  // AbandonOps() is for a ring about to be closed with operations in it: a send's
  // caller gets -ECANCELED (and may try again on the new ring), a receive goes on on the
  // new ring by itself; the buffers are kept until the poller goes, since the old
  // ring's cancellation runs asynchronously.
  void AbandonOps() {
    for (const std::unique_ptr<Op>& slot : ops_) {
      if (slot == nullptr || slot->id == 0) continue;
      Op& op = *slot;
      if (!op.is_send) {  // What arrived is copied out of the old ring's pool.
        for (const Op::Received& r : op.received) Hold(op, pool_->Data(r.bid, r.length));
        op.received.clear();
      }
      if (!op.in_kernel) continue;
      op.in_kernel = false;
      op.cancel_sent = false;
      if (op.cancelled) {
        EraseOp(op);
        continue;
      }
      if (op.is_send) {
        auto husk = std::make_unique<Op>();
        std::swap(husk->data, op.data);
        std::swap(husk->copy, op.copy);
        std::swap(husk->iov, op.iov);
        graveyard_.push_back(std::move(husk));
        op.finished = true;
        op.result = -ECANCELED;
        List(op);
      } else if (!op.paused && !op.ended) {
        QueueOp(op);
      }
    }
    in_kernel_ops_ = 0;
    if (pool_ != nullptr) graveyard_pools_.push_back(std::move(pool_));
    pool_registered_ = -1;
  }

  // CancelAllOps() cancels every operation in the kernel and waits (boundedly) for
  // their final completions. False if some were not seen (the ring must then not be
  // reused, and AbandonOps() keeps their buffers).
  bool CancelAllOps() {
    for (const std::unique_ptr<Op>& slot : ops_) {
      if (slot == nullptr || slot->id == 0 || !slot->in_kernel) continue;
      Op& op = *slot;
      op.cancelled = true;
      if (op.cancel_sent) continue;
      io_uring_sqe* sqe = ControlSqe();
      if (sqe == nullptr) break;
      io_uring_prep_cancel64(sqe, OpData(static_cast<uint32_t>(op.id)), 0);
      NoCompletionOnSuccess(sqe);
      op.cancel_sent = true;
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
        Complete(cqe->user_data, cqe->res, cqe->flags, ready);
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

  void Complete(uint64_t data, int res, unsigned flags, std::vector<PollEvent>& ready) {
    // An update or removal that failed found its poll already completed (ENOENT,
    // EALREADY); that poll's own completion tells the story.
    if (data == kControlData) return;
    if (static_cast<uint32_t>(data) == kOpMarker) {
      CompleteOp(static_cast<uint32_t>(data >> 32), res, flags);
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
  const unsigned recv_buffers_;           // Buffers in pool_.
  std::vector<std::unique_ptr<Op>> ops_;  // By slot; see FindOp().
  size_t live_ops_ = 0;                   // Records in use.
  std::vector<uint32_t> free_slots_;      // Slots of ops_ whose record is free.
  OpId op_sequence_ = 0;                  // The last operation's sequence number.
  std::vector<OpId> queued_ops_;          // To submit on the next Flush().
  std::vector<OpId> completed_;           // To run in RunCompleted().
  std::vector<OpId> starved_;             // Receives that found no buffer (ENOBUFS).
  std::unique_ptr<RecvBufferPool> pool_;  // Registered with ring_ if pool_registered_
  int pool_registered_ = -1;              // is ring_.ring_fd.
  std::vector<Op::Received> delivering_;  // Deliver()'s scratch lists.
  std::string delivering_held_;
  std::vector<std::unique_ptr<Op>> graveyard_;  // Buffers an abandoned ring may still use.
  std::vector<std::unique_ptr<RecvBufferPool>> graveyard_pools_;
  size_t in_kernel_ops_ = 0;
};

}  // namespace

absl::Status IoUringSupport() { return Support().status; }

absl::StatusOr<std::unique_ptr<Poller>> NewIoUringPoller() {
  return NewIoUringPollerForTesting(kRecvBuffers);
}

unsigned IoUringRecvBuffersForTesting(Poller& poller) {
  auto* io_uring = dynamic_cast<IoUringPoller*>(&poller);
  IOLOOP_CHECK(io_uring != nullptr, "IoUringRecvBuffersForTesting: not an io_uring poller");
  return io_uring->pool_ == nullptr ? 0 : io_uring->pool_->Population();
}

absl::StatusOr<std::unique_ptr<Poller>> NewIoUringPollerForTesting(unsigned recv_buffers) {
  IOLOOP_CHECK(
      recv_buffers > 0 && recv_buffers <= 32768 && (recv_buffers & (recv_buffers - 1)) == 0,
      "NewIoUringPollerForTesting: recv_buffers must be a power of two up to 32768");
  const KernelSupport& support = Support();
  if (!support.status.ok()) return support.status;
  io_uring ring;
  if (RingPool::ForThisThread().Take(ring)) {
    return std::unique_ptr<Poller>(
        new IoUringPoller(support, ring, /*enabled=*/true, recv_buffers));
  }
  io_uring_params params;
  if (int ret = CreateRingOffThread(ring, support.setup_flags, params); ret < 0) {
    return SetupFailure(-ret, kSqEntries, params);
  }
  return std::unique_ptr<Poller>(new IoUringPoller(support, ring, /*enabled=*/false, recv_buffers));
}

}  // namespace ioloop
