#include "ioloop/io_loop.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <limits>
#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"
#include "backends/default_poller.h"
#include "base/check.h"
#include "ioloop/internal/blocking_watchdog.h"
#include "waker/waker.h"

namespace ioloop {
namespace {

// The loop whose Start() is running on this thread, if any.
thread_local IOLoop* t_running_loop = nullptr;

std::atomic<IOLoop*> g_instance{nullptr};
std::mutex g_instance_mu;

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

}  // namespace

// A bounded multi-producer queue whose Push() is async-signal-safe: it only touches
// atomics and moves an AnyInvocable into a slot emptied in advance, which neither
// allocates nor frees for callbacks stored inline. (Bounded MPMC queue with per-cell
// sequence numbers, single consumer here: the loop thread.)
class IOLoop::SignalQueue {
 public:
  SignalQueue() {
    for (size_t i = 0; i < kSignalQueueCapacity; ++i) cells_[i].sequence.store(i);
  }

  bool Push(Callback& callback) {
    size_t pos = enqueue_.load(std::memory_order_relaxed);
    while (true) {
      Cell& cell = cells_[pos & kMask];
      const size_t seq = cell.sequence.load(std::memory_order_acquire);
      const intptr_t diff = static_cast<intptr_t>(seq) - static_cast<intptr_t>(pos);
      if (diff == 0) {
        if (enqueue_.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) {
          cell.callback = std::move(callback);
          cell.sequence.store(pos + 1, std::memory_order_release);
          return true;
        }
      } else if (diff < 0) {
        return false;  // Full.
      } else {
        pos = enqueue_.load(std::memory_order_relaxed);
      }
    }
  }

  bool Pop(Callback& out) {
    Cell& cell = cells_[dequeue_ & kMask];
    if (cell.sequence.load(std::memory_order_acquire) != dequeue_ + 1) return false;
    out = std::move(cell.callback);
    cell.callback = nullptr;  // Push() must find the slot empty: nothing to free.
    cell.sequence.store(dequeue_ + kSignalQueueCapacity, std::memory_order_release);
    ++dequeue_;
    return true;
  }

  bool MaybeNonEmpty() const {
    return cells_[dequeue_ & kMask].sequence.load(std::memory_order_acquire) == dequeue_ + 1;
  }

 private:
  static_assert((kSignalQueueCapacity & (kSignalQueueCapacity - 1)) == 0, "power of two");
  static_assert(std::atomic<size_t>::is_always_lock_free, "signal-safe atomics");
  static constexpr size_t kMask = kSignalQueueCapacity - 1;
  struct Cell {
    std::atomic<size_t> sequence;
    Callback callback;
  };
  std::array<Cell, kSignalQueueCapacity> cells_;
  std::atomic<size_t> enqueue_{0};
  size_t dequeue_ = 0;  // Loop thread only.
};

IOLoop::IOLoop() : IOLoop(Options{}) {}

IOLoop::IOLoop(Options options)
    : poller_(std::move(options.poller)),
      clock_(options.clock != nullptr ? options.clock : &RealClock()),
      waker_(std::move(options.waker)),
      log_handler_(std::move(options.log_handler)),
      signal_queue_(std::make_unique<SignalQueue>()) {
  if (!log_handler_) log_handler_ = &LogToStderr;
  if (!poller_) poller_ = NewDefaultPoller();
  if (!waker_) {
    auto waker = NewDefaultWaker();
    IOLOOP_CHECK(
        waker.ok(),
        absl::StrCat("IOLoop: cannot create a waker: ", waker.status().ToString()).c_str());
    waker_ = *std::move(waker);
  }
  waker_fd_ = waker_->fd();
  const absl::Status registered = poller_->Register(waker_fd_, kRead);
  IOLOOP_CHECK(registered.ok(),
               absl::StrCat("IOLoop: cannot watch the waker: ", registered.ToString()).c_str());
}

IOLoop::~IOLoop() {
  if (!closed_) Close(false).IgnoreError();
  IOLoop* self = this;
  g_instance.compare_exchange_strong(self, nullptr);
}

IOLoop& IOLoop::Instance() {
  if (IOLoop* loop = g_instance.load(std::memory_order_acquire)) return *loop;
  std::lock_guard<std::mutex> lock(g_instance_mu);
  if (IOLoop* loop = g_instance.load(std::memory_order_acquire)) return *loop;
  IOLoop* loop = new IOLoop();  // Process-wide; never destroyed.
  g_instance.store(loop, std::memory_order_release);
  return *loop;
}

bool IOLoop::Initialized() { return g_instance.load(std::memory_order_acquire) != nullptr; }

void IOLoop::Install() {
  std::lock_guard<std::mutex> lock(g_instance_mu);
  g_instance.store(this, std::memory_order_release);
}

// --- Handlers ---------------------------------------------------------------------

absl::Status IOLoop::AddHandler(int fd, Handler handler, EventMask events) {
  if (closed_) return absl::FailedPreconditionError("IOLoop::AddHandler: the loop is closed");
  if (fd >= 0 && static_cast<size_t>(fd) < handlers_.size() && handlers_[fd] != nullptr) {
    return absl::AlreadyExistsError(
        absl::StrCat("IOLoop::AddHandler fd ", fd, ": a handler is already registered"));
  }
  if (absl::Status s = poller_->Register(fd, events); !s.ok()) return s;
  if (static_cast<size_t>(fd) >= handlers_.size()) handlers_.resize(fd + 1);
  handlers_[fd] = std::make_unique<HandlerEntry>(
      HandlerEntry{std::move(handler), StackContext::Capture(), next_registration_++});
  return absl::OkStatus();
}

absl::Status IOLoop::UpdateHandler(int fd, EventMask events) {
  if (fd < 0 || static_cast<size_t>(fd) >= handlers_.size() || handlers_[fd] == nullptr) {
    return absl::NotFoundError(absl::StrCat("IOLoop::UpdateHandler fd ", fd, ": no handler"));
  }
  return poller_->Modify(fd, events);
}

absl::Status IOLoop::RemoveHandler(int fd) {
  if (fd < 0 || static_cast<size_t>(fd) >= handlers_.size() || handlers_[fd] == nullptr) {
    return absl::NotFoundError(absl::StrCat("IOLoop::RemoveHandler fd ", fd, ": no handler"));
  }
  std::unique_ptr<HandlerEntry> entry = std::move(handlers_[fd]);
  // The running handler's object must outlive its own call: retire it until then.
  if (entry.get() == dispatching_) retired_ = std::move(entry);
  return poller_ ? poller_->Unregister(fd) : absl::OkStatus();
}

// --- Callbacks ----------------------------------------------------------------------

// WithActiveContext() wraps `callback` with the active stack context. Callers check
// StackContext::Active() first, so with none active (the common case) nothing is
// wrapped or allocated.
Callback IOLoop::WithActiveContext(Callback&& callback) {
  return [context = StackContext::Capture(), callback = std::move(callback)]() mutable {
    context.Run(callback);
  };
}

void IOLoop::AddCallback(Callback callback) {
  if (StackContext::Active()) callback = WithActiveContext(std::move(callback));
  {
    std::lock_guard<std::mutex> lock(callbacks_mu_);
    callbacks_.push_back(std::move(callback));
  }
  if (t_running_loop != this) WakeIfNeeded();
}

void IOLoop::WakeIfNeeded() {
  // A plain load first: while a wake is pending, producers only read the flag's cache
  // line instead of fighting over it.
  if (wake_pending_.load(std::memory_order_relaxed)) return;
  if (!wake_pending_.exchange(true) && waker_) {
    wakeups_sent_.fetch_add(1, std::memory_order_relaxed);
    waker_->Wake().IgnoreError();  // Fails only if the waker's fd was closed under us.
  }
}

void IOLoop::AddCallbackFromSignal(Callback callback) {
  if (!signal_queue_->Push(callback)) {
    signal_overflows_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  // Wake even on the loop thread: a signal may land there outside poll, after the loop
  // has decided how long to sleep. (WakeIfNeeded() only touches atomics and write().)
  WakeIfNeeded();
}

bool IOLoop::HasQueuedCallbacks() {
  if (signal_queue_->MaybeNonEmpty()) return true;
  std::lock_guard<std::mutex> lock(callbacks_mu_);
  return !callbacks_.empty();
}

// --- Timeouts -----------------------------------------------------------------------

TimeoutHandle IOLoop::AddTimeout(absl::Time deadline, Callback callback) {
  return AddTimeoutNanos(absl::ToUnixNanos(deadline), std::move(callback));
}

TimeoutHandle IOLoop::AddTimeout(absl::Duration delay, Callback callback) {
  // Nanosecond integers on this path: absl::Time arithmetic costs more than the heap.
  const int64_t now = clock_->NowNanos();
  // ToInt64Nanoseconds() is inline only for non-negative durations; a negative delay
  // (already due) takes the same fast path negated. Infinities saturate.
  const int64_t delta = delay >= absl::ZeroDuration()        ? absl::ToInt64Nanoseconds(delay)
                        : delay == -absl::InfiniteDuration() ? std::numeric_limits<int64_t>::min()
                                                             : -absl::ToInt64Nanoseconds(-delay);
  int64_t deadline;
  if (__builtin_add_overflow(now, delta, &deadline)) {
    deadline =
        delta > 0 ? std::numeric_limits<int64_t>::max() : std::numeric_limits<int64_t>::min();
  }
  return AddTimeoutNanos(deadline, std::move(callback));
}

TimeoutHandle IOLoop::AddTimeoutNanos(int64_t deadline_ns, Callback&& callback) {
  if (StackContext::Active())
    return timers_.AddNanos(deadline_ns, WithActiveContext(std::move(callback)));
  return timers_.AddNanos(deadline_ns, std::move(callback));
}

void IOLoop::RemoveTimeout(TimeoutHandle handle) { timers_.Cancel(handle); }

// --- Running ------------------------------------------------------------------------

void IOLoop::Start() {
  IOLOOP_CHECK(!closed_, "IOLoop::Start() called on a closed loop");
  IOLOOP_CHECK(!running_.load(), "IOLoop::Start() called while this loop is already running");
  if (stopped_.exchange(false)) return;  // Stop() before Start(): return at once.
  running_.store(true);
  IOLoop* const outer_loop = std::exchange(t_running_loop, this);
  // Work that was scheduled with no context runs with none, whatever is active here.
  NullContext no_context;
  if (watchdog_) watchdog_->Busy();
  while (true) {
    RunIteration();
    if (stopped_.load()) break;
  }
  if (watchdog_) watchdog_->Idle();
  t_running_loop = outer_loop;
  stopped_.store(false);
  running_.store(false);
}

void IOLoop::Stop() {
  stopped_.store(true);
  if (t_running_loop != this) WakeIfNeeded();
}

void IOLoop::RunIteration() {
  RunCallbacks();
  RunDueTimeouts();
  if (stopped_.load(std::memory_order_relaxed)) return;

  const absl::Duration timeout = PollTimeout();
  ready_.clear();
  const uint64_t registrations_before_poll = next_registration_;
  if (watchdog_) watchdog_->Idle();
  const absl::Status polled = poller_->Poll(timeout, ready_);
  if (watchdog_) watchdog_->Busy();
  if (!polled.ok()) {
    // Log the first failure and then every 1000th, so a persistent error is visible
    // without flooding the log.
    if (poll_failures_++ % 1000 == 0) {
      Log(absl::StrCat("poll failed (", poll_failures_, " times so far): ", polled.ToString()));
    }
    return;
  }
  Dispatch(registrations_before_poll);
}

void IOLoop::RunCallbacks() {
  {
    std::lock_guard<std::mutex> lock(callbacks_mu_);
    running_callbacks_.swap(callbacks_);
  }
  for (Callback& callback : running_callbacks_) {
    RunGuarded(StackContext(), callback, /*from_handler=*/false);
  }
  running_callbacks_.clear();

  Callback from_signal;
  while (signal_queue_->Pop(from_signal)) {
    RunGuarded(StackContext(), from_signal, /*from_handler=*/false);
    from_signal = nullptr;
  }
  const uint64_t overflows = signal_overflows_.load(std::memory_order_relaxed);
  if (overflows != overflows_logged_) {
    Log(absl::StrCat("AddCallbackFromSignal: queue full (capacity ", kSignalQueueCapacity, "); ",
                     overflows - overflows_logged_, " callbacks dropped, ", overflows, " in all"));
    overflows_logged_ = overflows;
  }
}

void IOLoop::RunDueTimeouts() {
  if (timers_.Empty()) return;
  if (!timers_.TakeDueNanos(clock_->NowNanos())) return;
  TimerHeap::Callback callback;
  while (timers_.PopTaken(callback)) {
    RunGuarded(StackContext(), callback, /*from_handler=*/false);
    callback = nullptr;
  }
}

absl::Duration IOLoop::PollTimeout() {
  if (HasQueuedCallbacks()) return absl::ZeroDuration();
  const int64_t next = timers_.NextDeadlineNanos();
  if (next == std::numeric_limits<int64_t>::max()) return absl::InfiniteDuration();
  const int64_t wait = next - clock_->NowNanos();
  return wait > 0 ? absl::Nanoseconds(wait) : absl::ZeroDuration();
}

void IOLoop::Dispatch(uint64_t registrations_before_poll) {
  for (const PollEvent& event : ready_) {
    const int fd = event.fd;
    if (fd == waker_fd_) {
      waker_->Consume();
      wake_pending_.store(false);
      continue;
    }
    if (static_cast<size_t>(fd) >= handlers_.size()) continue;
    HandlerEntry* entry = handlers_[fd].get();
    // No handler (removed earlier in this batch), or one registered after these events
    // were collected (the fd number was closed and reused): the events are not its.
    if (entry == nullptr || entry->registration >= registrations_before_poll) continue;
    dispatching_ = entry;
    if (entry->context.empty()) {
      // RunGuarded() without its context branch, written out: this is the per-event
      // path, and the generic form measured 5 more instructions per event (W1,
      // callgrind via bench/measure).
      try {
        entry->handler(fd, event.events);
      } catch (const UnhandledException& unhandled) {
        ReportException(unhandled.error(), /*from_handler=*/true);
      } catch (...) {
        ReportException(std::current_exception(), /*from_handler=*/true);
      }
    } else {
      auto call = [entry, &event] { entry->handler(event.fd, event.events); };
      RunGuarded(entry->context, call, /*from_handler=*/true);
    }
    dispatching_ = nullptr;
    if (retired_ != nullptr) retired_.reset();
  }
}

template <typename F>
void IOLoop::RunGuarded(const StackContext& context, F& f, bool from_handler) {
  try {
    if (context.empty()) {
      f();
    } else {
      context.Run(f);
    }
  } catch (const UnhandledException& unhandled) {
    ReportException(unhandled.error(), from_handler);
  } catch (...) {
    ReportException(std::current_exception(), from_handler);
  }
}

void IOLoop::ReportException(std::exception_ptr error, bool from_handler) {
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

void IOLoop::Log(absl::string_view message) { log_handler_(message); }

void IOLoop::SetLogHandler(LogHandler handler) {
  log_handler_ = handler ? std::move(handler) : LogHandler(&LogToStderr);
}

// --- Close --------------------------------------------------------------------------

absl::Status IOLoop::Close(bool all_fds) {
  if (running_.load()) return absl::FailedPreconditionError("IOLoop::Close: the loop is running");
  if (closed_) return absl::OkStatus();
  closed_ = true;
  watchdog_.reset();
  absl::Status status;
  for (size_t fd = 0; fd < handlers_.size(); ++fd) {
    if (handlers_[fd] == nullptr) continue;
    handlers_[fd].reset();
    if (all_fds && close(static_cast<int>(fd)) < 0 && errno != EBADF) {
      status.Update(absl::ErrnoToStatus(errno, absl::StrCat("IOLoop::Close: close fd ", fd)));
    }
  }
  handlers_.clear();
  poller_.reset();
  waker_fd_ = -1;
  waker_.reset();  // Close() must not race AddCallback(): see the header.
  return status;
}

// --- Watchdog -----------------------------------------------------------------------

void IOLoop::SetBlockingSignalThreshold(absl::Duration threshold, BlockingAction action) {
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
