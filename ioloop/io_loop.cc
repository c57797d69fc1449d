#include "ioloop/io_loop.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <limits>
#include <system_error>
#include <utility>

#include "absl/base/optimization.h"
#include "absl/strings/str_cat.h"
#include "backends/default_poller.h"
#include "base/check.h"
#include "base/errno_status.h"
#include "ioloop/internal/blocking_watchdog.h"
#include "ioloop/internal/signal_queue.h"
#include "waker/default_waker.h"

namespace ioloop {
namespace {

constexpr int64_t kNever = std::numeric_limits<int64_t>::max();

// fds below this (Linux's default fs.nr_open) live in a vector indexed by fd; larger
// ones, which only a custom poller could accept, in a hash map.
constexpr int kDenseFdLimit = 1 << 20;

std::atomic<IOLoop*> g_instance{nullptr};
Mutex g_instance_mu;

void LogToStderr(absl::string_view message) {
  std::fprintf(stderr, "ioloop: %.*s\n", static_cast<int>(message.size()), message.data());
}

bool IsBrokenPipe(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const std::system_error& e) {
    return e.code().value() == EPIPE && (e.code().category() == std::generic_category() ||
                                         e.code().category() == std::system_category());
  } catch (...) {
  }
  return false;
}

std::string Describe(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
  }
  return "an exception not derived from std::exception";
}

// Nanoseconds in `d`, saturating at the int64 range (infinities included).
int64_t SaturatingNanos(absl::Duration d) {
  static constexpr absl::Duration kMax = absl::Nanoseconds(std::numeric_limits<int64_t>::max());
  static constexpr absl::Duration kMin = absl::Nanoseconds(std::numeric_limits<int64_t>::min());
  if (ABSL_PREDICT_TRUE(d >= absl::ZeroDuration() && d < kMax)) return absl::ToInt64Nanoseconds(d);
  if (d >= kMax) return std::numeric_limits<int64_t>::max();
  if (d <= kMin) return std::numeric_limits<int64_t>::min();
  return -absl::ToInt64Nanoseconds(-d);
}

int64_t SaturatingAdd(int64_t a, int64_t b) {
  int64_t sum;
  if (__builtin_add_overflow(a, b, &sum)) {
    return b > 0 ? std::numeric_limits<int64_t>::max() : std::numeric_limits<int64_t>::min();
  }
  return sum;
}

int64_t SaturatingSub(int64_t a, int64_t b) {
  int64_t difference;
  if (__builtin_sub_overflow(a, b, &difference)) {
    return b < 0 ? std::numeric_limits<int64_t>::max() : std::numeric_limits<int64_t>::min();
  }
  return difference;
}

}  // namespace

// RunScope marks the loop as running on this thread for one Start() or RunOnce(), and
// undoes it on every way out: Running() is false whenever neither is on the stack.
class IOLoop::RunScope {
 public:
  explicit RunScope(IOLoop& loop) : loop_(loop) {
    loop_.owner_thread_.store(std::this_thread::get_id(), std::memory_order_relaxed);
    loop_.running_.store(true);
    if (loop_.watchdog_) loop_.watchdog_->Busy();
  }
  ~RunScope() {
    if (loop_.watchdog_) loop_.watchdog_->Idle();
    loop_.now_valid_ = false;
    loop_.running_.store(false);
  }
  RunScope(const RunScope&) = delete;
  RunScope& operator=(const RunScope&) = delete;

 private:
  IOLoop& loop_;
  // Work scheduled with no stack context runs with none, whatever is active here.
  NullContext no_context_;
};

IOLoop::IOLoop() : IOLoop(Options{}) {}

IOLoop::IOLoop(Options options) : IOLoop(std::move(options), Unchecked()) {
  const absl::Status status = Init();
  IOLOOP_CHECK(status.ok(), status.ToString());
}

IOLoop::IOLoop(Options options, Unchecked)
    : poller_(std::move(options.poller)),
      clock_(options.clock != nullptr ? options.clock : &RealClock()),
      waker_(std::move(options.waker)),
      log_handler_(std::move(options.log_handler)),
      owner_thread_(std::this_thread::get_id()),
      signal_queue_(std::make_unique<SignalQueue>()) {}

absl::StatusOr<std::unique_ptr<IOLoop>> IOLoop::Create(Options options) {
  std::unique_ptr<IOLoop> loop(new IOLoop(std::move(options), Unchecked()));
  if (absl::Status status = loop->Init(); !status.ok()) return status;
  return loop;
}

absl::Status IOLoop::Init() {
  if (!log_handler_) log_handler_ = &LogToStderr;
  if (!poller_) {
    absl::StatusOr<std::unique_ptr<Poller>> poller = NewPoller(DefaultPollerName());
    if (!poller.ok()) return poller.status();
    poller_ = *std::move(poller);
  }
  if (!waker_) {
    absl::StatusOr<std::unique_ptr<Waker>> waker = NewDefaultWaker();
    if (!waker.ok()) return waker.status();
    waker_ = *std::move(waker);
  }
  if (absl::Status s = poller_->Register(waker_->fd(), kRead); !s.ok()) {
    return absl::Status(s.code(), absl::StrCat("IOLoop: cannot watch its waker: ", s.message()));
  }
  waker_fd_ = waker_->fd();
  completion_io_ = poller_->completion_io();
  return absl::OkStatus();
}

IOLoop::~IOLoop() {
  if (!closed_) Close(false).IgnoreError();
  // Destructors run by Close() may have scheduled more (it is all destroyed here too).
  Teardown(false).IgnoreError();
  IOLoop* self = this;
  g_instance.compare_exchange_strong(self, nullptr);
}

IOLoop& IOLoop::Instance() {
  if (IOLoop* loop = g_instance.load(std::memory_order_acquire)) return *loop;
  MutexLock lock(g_instance_mu);
  if (IOLoop* loop = g_instance.load(std::memory_order_acquire)) return *loop;
  IOLoop* loop = new IOLoop();  // Process-wide; never destroyed.
  g_instance.store(loop, std::memory_order_release);
  return *loop;
}

bool IOLoop::Initialized() { return g_instance.load(std::memory_order_acquire) != nullptr; }

void IOLoop::Install() {
  MutexLock lock(g_instance_mu);
  g_instance.store(this, std::memory_order_release);
}

bool IOLoop::IsInLoopThread() const {
  return owner_thread_.load(std::memory_order_relaxed) == std::this_thread::get_id();
}

void IOLoop::CheckLoopThreadSlow(const char* method) const {
  IOLOOP_DCHECK(!running_.load(std::memory_order_relaxed) || IsInLoopThread(),
                absl::StrCat("IOLoop::", method,
                             " called from a thread other than the loop thread while the "
                             "loop runs"));
}

LoopMetrics IOLoop::Metrics() const {
  LoopMetrics m;
  m.iterations = iterations_.load(std::memory_order_relaxed);
  m.events_dispatched = events_dispatched_.load(std::memory_order_relaxed);
  m.callbacks_run = callbacks_run_.load(std::memory_order_relaxed);
  m.timeouts_fired = timeouts_fired_.load(std::memory_order_relaxed);
  m.wakeups_sent = wakeups_sent_.load(std::memory_order_relaxed);
  m.signal_callbacks_dropped = signal_overflows_.load(std::memory_order_relaxed);
  m.idle_time = absl::Nanoseconds(idle_ns_.load(std::memory_order_relaxed));
  return m;
}

// RunGuarded() runs one piece of user work: inline, so that the common case (no stack
// context, nothing thrown) costs a branch; the catch is out of line.
template <typename F>
inline void IOLoop::RunGuarded(const StackContext& context, F&& f, bool from_handler) {
  try {
    if (ABSL_PREDICT_TRUE(context.empty())) {
      f();
    } else {
      context.Run(f);
    }
  } catch (...) {
    ReportException(std::current_exception(), from_handler);
  }
}

// --- Handlers ---------------------------------------------------------------------

IOLoop::FdSlot* IOLoop::FindSparseSlot(int fd) {
  if (ABSL_PREDICT_TRUE(sparse_fds_.empty())) return nullptr;
  auto it = sparse_fds_.find(fd);
  return it == sparse_fds_.end() ? nullptr : &it->second;
}

IOLoop::FdSlot& IOLoop::SlotFor(int fd) {
  if (fd >= kDenseFdLimit) return sparse_fds_[fd];
  if (static_cast<size_t>(fd) >= fds_.size()) {
    fds_.resize(std::min<size_t>(std::max<size_t>(fd + 1, fds_.size() * 2), kDenseFdLimit));
  }
  return fds_[fd];
}

void IOLoop::EraseSlot(int fd) {
  if (fd >= kDenseFdLimit) {
    sparse_fds_.erase(fd);
  } else {
    fds_[fd] = FdSlot();
  }
}

absl::Status IOLoop::AddHandler(int fd, Handler handler, EventMask events) {
  return AddHandlerEntry(fd, HandlerFunction(std::move(handler)), events);
}

absl::Status IOLoop::AddHandlerEntry(int fd, HandlerFunction&& handler, EventMask events) {
  CheckLoopThread("AddHandler");
  if (closed_) {
    return absl::FailedPreconditionError(
        absl::StrCat("IOLoop::AddHandler fd ", fd, ": the loop is closed"));
  }
  if (fd < 0) {
    return absl::InvalidArgumentError(absl::StrCat("IOLoop::AddHandler fd ", fd, ": negative fd"));
  }
  if (const FdSlot* slot = FindSlot(fd); slot != nullptr && slot->entry != nullptr) {
    return absl::AlreadyExistsError(
        absl::StrCat("IOLoop::AddHandler fd ", fd, ": a handler is already registered"));
  }
  if (absl::Status s = poller_->Register(fd, events); !s.ok()) return s;
  SlotFor(fd) =
      FdSlot{new HandlerEntry{std::move(handler), StackContext::Capture()}, next_registration_++};
  ++handler_count_;
  return absl::OkStatus();
}

absl::Status IOLoop::UpdateHandler(int fd, EventMask events) {
  CheckLoopThread("UpdateHandler");
  const FdSlot* slot = FindSlot(fd);
  if (slot == nullptr || slot->entry == nullptr) {
    return absl::NotFoundError(absl::StrCat("IOLoop::UpdateHandler fd ", fd, ": no handler"));
  }
  return poller_->Modify(fd, events);
}

absl::Status IOLoop::RemoveHandler(int fd) {
  CheckLoopThread("RemoveHandler");
  FdSlot* slot = FindSlot(fd);
  if (slot == nullptr || slot->entry == nullptr) {
    return absl::NotFoundError(absl::StrCat("IOLoop::RemoveHandler fd ", fd, ": no handler"));
  }
  // Destroyed after the bookkeeping below (when this returns): its destructor may call
  // back into the loop.
  std::unique_ptr<HandlerEntry> entry(slot->entry);
  EraseSlot(fd);
  --handler_count_;
  absl::Status status = poller_->Unregister(fd);
  // The running handler's object must outlive its own call: retire it until then.
  if (entry.get() == dispatching_) retired_ = std::move(entry);
  return status;
}

// --- Callbacks ----------------------------------------------------------------------

void IOLoop::AddCallback(Callback callback) {
  if (StackContext::Active()) callback = Wrap(std::move(callback));
  Post(QueuedCallback(std::move(callback)));
}

void IOLoop::Wake() {
  wakeups_sent_.fetch_add(1, std::memory_order_relaxed);
  if (waker_) waker_->Wake().IgnoreError();  // Fails only if its fd was closed under us.
}

void IOLoop::AddCallbackFromSignal(Callback callback) {
  if (!signal_queue_->Push(callback)) {
    signal_overflows_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  // The loop clears the flag (an exchange too) before it drains the queue, so of any
  // push and drain, either the drain sees the push or the push sees the flag clear and
  // wakes: both are read-modify-writes of one atomic, which orders them.
  if (!signal_wake_pending_.exchange(true, std::memory_order_acq_rel)) Wake();
}

void IOLoop::RunCallbacks() {
  {
    MutexLock lock(callbacks_mu_);
    running_callbacks_.swap(callbacks_);
    // Awake and draining: a post from now on is seen before the loop sleeps again (in
    // PollTimeout(), under this lock), so it needs no wake-up. Holding the lock for
    // both the drain and these flags is what makes that hold: no fences to reason about.
    polling_ = false;
    wake_pending_ = false;
  }
  const StackContext none;
  for (QueuedCallback& callback : running_callbacks_) {
    RunGuarded(none, callback, /*from_handler=*/false);
    // Destroyed right after it ran, before the next one runs.
    if (!callback.ResetIfTrivial()) callback = nullptr;
  }
  callbacks_run_.store(callbacks_run_.load(std::memory_order_relaxed) + running_callbacks_.size(),
                       std::memory_order_relaxed);
  running_callbacks_.clear();

  if (signal_wake_pending_.exchange(false, std::memory_order_acq_rel)) {
    Callback from_signal;
    while (signal_queue_->Pop(from_signal)) {
      RunGuarded(StackContext(), from_signal, /*from_handler=*/false);
      from_signal = nullptr;
      Bump(callbacks_run_);
    }
  }
  const uint64_t overflows = signal_overflows_.load(std::memory_order_relaxed);
  if (ABSL_PREDICT_FALSE(overflows != overflows_logged_)) {
    Log(absl::StrCat("AddCallbackFromSignal: queue full (capacity ", kSignalQueueCapacity, "); ",
                     overflows - overflows_logged_, " callbacks dropped, ", overflows, " in all"));
    overflows_logged_ = overflows;
  }
}

// --- Timeouts -----------------------------------------------------------------------

int64_t IOLoop::ReadNowNanos() {
  now_ns_ = clock_->NowNanos();
  // Outside an iteration nothing would refresh it: read the clock every time then.
  now_valid_ = running_.load(std::memory_order_relaxed);
  return now_ns_;
}

void IOLoop::UpdateTime() {
  CheckLoopThread("UpdateTime");
  now_ns_ = clock_->NowNanos();
  now_valid_ = running_.load(std::memory_order_relaxed);
}

TimeoutHandle IOLoop::AddTimeout(absl::Time deadline, Callback callback) {
  CheckLoopThread("AddTimeout");
  return AddTimeoutNanos(absl::ToUnixNanos(deadline), std::move(callback));  // Saturates.
}

TimeoutHandle IOLoop::AddTimeout(absl::Duration delay, Callback callback) {
  CheckLoopThread("AddTimeout");
  return AddTimeoutNanos(DeadlineAfter(delay), std::move(callback));
}

int64_t IOLoop::DeadlineAfterSlow(absl::Duration delay) {
  const int64_t delta = SaturatingNanos(delay);
  if (delta != std::numeric_limits<int64_t>::max() &&
      delta != std::numeric_limits<int64_t>::min()) {
    last_delay_ = delay;  // Exactly representable: remember it for DeadlineAfter().
    last_delay_ns_ = delta;
  }
  // A delay beyond the int64 range (infinities included) is "never" or "at once",
  // wherever the clock stands (a fake clock may read before the epoch).
  int64_t deadline;
  if (ABSL_PREDICT_FALSE(delta == std::numeric_limits<int64_t>::max())) {
    deadline = kNever;
  } else if (ABSL_PREDICT_FALSE(delta == std::numeric_limits<int64_t>::min())) {
    deadline = std::numeric_limits<int64_t>::min();
  } else {
    deadline = SaturatingAdd(CachedNowNanos(), delta);
  }
  return deadline;
}

TimeoutHandle IOLoop::AddTimeoutNanos(int64_t deadline_ns, Callback&& callback) {
  if (StackContext::Active()) return timers_.AddNanos(deadline_ns, Wrap(std::move(callback)));
  return timers_.AddNanos(deadline_ns, std::move(callback));
}

void IOLoop::RunDueTimeouts() {
  if (timers_.empty()) return;
  now_ns_ = clock_->NowNanos();
  now_valid_ = true;
  if (!timers_.TakeDueNanos(now_ns_)) return;
  TimerHeap::Callback callback;
  while (timers_.PopTaken(callback)) {
    RunGuarded(StackContext(), callback, /*from_handler=*/false);
    callback = nullptr;  // Destroyed right after it ran.
    Bump(timeouts_fired_);
  }
  now_valid_ = false;  // They took time: the poll timeout and later delays re-read it.
}

// --- Running ------------------------------------------------------------------------

void IOLoop::Start() {
  IOLOOP_CHECK(!closed_, "IOLoop::Start() called on a closed loop");
  IOLOOP_CHECK(!running_.load(), "IOLoop::Start() called while this loop is already running");
  if (stopped_.exchange(false)) return;  // Stop() before Start(): return at once.
  RunScope scope(*this);
  while (true) {
    Bump(iterations_);
    RunCallbacks();
    RunDueTimeouts();
    if (stopped_.load()) break;  // Checked only before polling, as in Tornado.
    PollAndDispatch(absl::InfiniteDuration());
  }
  stopped_.store(false);
}

bool IOLoop::RunOnce(absl::Duration max_wait) {
  if (closed_) return false;
  IOLOOP_CHECK(!running_.load(), "IOLoop::RunOnce() called while this loop is already running");
  if (stopped_.exchange(false)) return false;
  RunScope scope(*this);
  Bump(iterations_);
  RunCallbacks();
  RunDueTimeouts();
  if (!stopped_.load()) {
    PollAndDispatch(std::max(max_wait, absl::ZeroDuration()));
    if (!stopped_.load()) return true;
    // Stopped by what was dispatched: finish as Start() would.
    Bump(iterations_);
    RunCallbacks();
    RunDueTimeouts();
  }
  stopped_.store(false);
  return false;
}

void IOLoop::Stop() {
  stopped_.store(true);
  bool wake;
  {
    MutexLock lock(callbacks_mu_);
    wake = polling_ && !wake_pending_;
    wake_pending_ = wake_pending_ || wake;
  }
  if (wake) Wake();
}

absl::Duration IOLoop::PollTimeout(absl::Duration max_wait) {
  absl::Duration timeout = max_wait;
  const int64_t next = timers_.NextDeadlineNanos();
  if (next != kNever) {
    const int64_t wait = SaturatingSub(next, CachedNowNanos());
    timeout = std::min(timeout, wait > 0 ? absl::Nanoseconds(wait) : absl::ZeroDuration());
  }
  if (timeout == absl::ZeroDuration()) return timeout;
  MutexLock lock(callbacks_mu_);
  // A callback or a Stop() that arrived since the drain: poll without sleeping.
  if (!callbacks_.empty() || stopped_.load(std::memory_order_relaxed)) {
    return absl::ZeroDuration();
  }
  polling_ = true;  // From here on, a post wakes the loop.
  return timeout;
}

void IOLoop::PollAndDispatch(absl::Duration max_wait) {
  const absl::Duration timeout = PollTimeout(max_wait);
  ready_.clear();
  const uint64_t registrations_before_poll = next_registration_;
  if (watchdog_) watchdog_->Idle();
  const int64_t idle_start = clock_->CoarseNowNanos();
  const absl::Status polled = poller_->Poll(timeout, ready_);
  idle_ns_.store(idle_ns_.load(std::memory_order_relaxed) + clock_->CoarseNowNanos() - idle_start,
                 std::memory_order_relaxed);
  if (watchdog_) watchdog_->Busy();
  now_valid_ = false;
  if (ABSL_PREDICT_FALSE(!polled.ok())) {
    // Log the first failure and then every 1000th, so a persistent error is visible
    // without flooding the log.
    if (poll_failures_++ % 1000 == 0) {
      Log(absl::StrCat("poll failed (", poll_failures_, " times so far): ", polled.ToString()));
    }
    return;
  }
  Dispatch(registrations_before_poll);
  if (completion_io_ != nullptr) {
    const size_t ran = completion_io_->RunCompleted([this](absl::FunctionRef<void()> f) {
      RunGuarded(StackContext(), f, /*from_handler=*/true);
    });
    events_dispatched_.store(events_dispatched_.load(std::memory_order_relaxed) + ran,
                             std::memory_order_relaxed);
  }
}

void IOLoop::Dispatch(uint64_t registrations_before_poll) {
  uint64_t dispatched = 0;
  for (const PollEvent& event : ready_) {
    if (event.fd == waker_fd_) {
      waker_->Consume();
      continue;
    }
    const FdSlot* slot = FindSlot(event.fd);
    // No handler (removed earlier in this batch), or one registered after these events
    // were collected (the fd number was closed and reused): the events are not its.
    if (slot == nullptr || slot->entry == nullptr ||
        slot->registration >= registrations_before_poll) {
      continue;
    }
    HandlerEntry* const entry = slot->entry;
    dispatching_ = entry;
    RunGuarded(
        entry->context, [entry, &event] { entry->handler(event.fd, event.events); },
        /*from_handler=*/true);
    dispatching_ = nullptr;
    ++dispatched;
    if (ABSL_PREDICT_FALSE(retired_ != nullptr)) retired_.reset();
  }
  events_dispatched_.store(events_dispatched_.load(std::memory_order_relaxed) + dispatched,
                           std::memory_order_relaxed);
}

void IOLoop::ReportException(std::exception_ptr error, bool from_handler) {
  try {
    std::rethrow_exception(error);
  } catch (const UnhandledException& unhandled) {
    // Every stack context of the work declined it: the loop's turn.
    error = unhandled.error();
  } catch (...) {
  }
  if (from_handler && IsBrokenPipe(error)) return;  // The peer went away; as Tornado.
  try {
    HandleCallbackException(std::move(error));
  } catch (...) {
    Log(absl::StrCat("HandleCallbackException threw: ", Describe(std::current_exception())));
  }
}

void IOLoop::HandleCallbackException(std::exception_ptr error) {
  Log(absl::StrCat("exception in callback: ", Describe(error)));
}

void IOLoop::Log(absl::string_view message) {
  try {
    log_handler_(message);
  } catch (...) {
    LogToStderr(message);  // The log handler itself failed; nothing may escape.
  }
}

void IOLoop::SetLogHandler(LogHandler handler) {
  log_handler_ = handler ? std::move(handler) : LogHandler(&LogToStderr);
}

// --- Close --------------------------------------------------------------------------

absl::Status IOLoop::Teardown(bool close_fds) {
  absl::Status status;
  while (true) {
    bool destroyed_any = false;
    // Handlers: unregister them all (and close their fds) with the table left empty
    // and consistent, then destroy them one by one.
    if (handler_count_ > 0) {
      destroyed_any = true;
      std::vector<std::pair<int, std::unique_ptr<HandlerEntry>>> doomed;
      doomed.reserve(handler_count_);
      for (size_t fd = 0; fd < fds_.size(); ++fd) {
        if (fds_[fd].entry != nullptr) doomed.emplace_back(static_cast<int>(fd), fds_[fd].entry);
      }
      for (auto& [fd, slot] : sparse_fds_) doomed.emplace_back(fd, slot.entry);
      std::vector<FdSlot>().swap(fds_);
      sparse_fds_.clear();
      handler_count_ = 0;
      // No Unregister() per fd: the poller is released right after (Close() and
      // ~IOLoop are the only callers), which drops every registration at once.
      for (auto& [fd, entry] : doomed) {
        if (close_fds && close(fd) < 0 && errno != EBADF) {
          status.Update(ErrnoStatus(errno, "IOLoop::Close: close", fd));
        }
      }
      for (auto& [fd, entry] : doomed) entry.reset();
    }
    if (!timers_.empty()) {
      destroyed_any = true;
      timers_.Clear();
    }
    std::vector<QueuedCallback> callbacks;
    {
      MutexLock lock(callbacks_mu_);
      callbacks.swap(callbacks_);
    }
    for (QueuedCallback& callback : callbacks) {
      destroyed_any = true;
      callback = nullptr;
    }
    Callback from_signal;
    while (signal_queue_->Pop(from_signal)) {
      destroyed_any = true;
      from_signal = nullptr;
    }
    if (!destroyed_any) return status;
  }
}

absl::Status IOLoop::Close(bool all_fds) {
  if (running_.load()) return absl::FailedPreconditionError("IOLoop::Close: the loop is running");
  if (closed_) return absl::OkStatus();
  closed_ = true;
  watchdog_.reset();
  absl::Status status = Teardown(all_fds);
  if (poller_ && waker_fd_ >= 0) poller_->Unregister(waker_fd_).IgnoreError();
  completion_io_ = nullptr;
  poller_.reset();
  waker_fd_ = -1;
  waker_.reset();  // Close() must not race AddCallback(): see the header.
  return status;
}

// --- Watchdog -----------------------------------------------------------------------

void IOLoop::SetBlockingSignalThreshold(absl::Duration threshold, BlockingAction action) {
  CheckLoopThread("SetBlockingSignalThreshold");
  watchdog_.reset();
  if (threshold <= absl::ZeroDuration()) return;
  if (!action) {
    action = [this](const BlockingReport& report) {
      Log(absl::StrCat(
          "IOLoop blocked for ", absl::FormatDuration(report.blocked_for),
          report.symbolized.empty() ? " (no stack captured)" : "; loop thread stack:\n",
          report.symbolized));
    };
  }
  watchdog_ = std::make_unique<ioloop_internal::BlockingWatchdog>(
      threshold, [action = std::move(action)](absl::Duration blocked_for,
                                              const ioloop_internal::StackSample& stack) mutable {
        action(BlockingReport{blocked_for, stack.frames, stack.symbolized});
      });
  if (running_.load()) watchdog_->Busy();  // Called from a callback: busy right now.
}

void IOLoop::SetBlockingLogThreshold(absl::Duration threshold) {
  SetBlockingSignalThreshold(threshold, nullptr);
}

}  // namespace ioloop
