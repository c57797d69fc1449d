// IOLoop: a level-triggered I/O event loop after Tornado's IOLoop.
//
// The loop composes three injectable parts, given through IOLoop::Options: a Poller
// (//backends), a Clock (//timers) and a Waker (//waker); it keeps its timeouts in a
// TimerHeap (//timers). Tests run the same loop on testing::FakePoller and
// testing::FakeClock (testing/fake_loop.h puts the three together).
//
//   IOLoop loop;
//   loop.AddHandler(fd, [&](int fd, EventMask events) { ... }, kRead);
//   loop.AddTimeout(absl::Seconds(1), [&] { loop.Stop(); });
//   loop.Start();
//
// One iteration:
//   1. run the callbacks queued before the iteration began, in FIFO order (callbacks
//      they add wait for the next iteration, so I/O and timers are never starved);
//   2. read the clock once and run the timeouts due at that time, in (deadline,
//      insertion) order, skipping any removed meanwhile; a timeout added by one of
//      them with a past deadline runs on a later iteration, after one poll;
//   3. if Stop() was called, Start() returns here: the stop flag is checked only
//      before polling (Tornado's rule);
//   4. poll: timeout zero if callbacks are queued, else until the next deadline, else
//      without limit;
//   5. dispatch the ready fds (their order among themselves is unspecified).
//
// Threads: an IOLoop belongs to the thread that runs it (Start() or RunOnce()), and
// before it first runs, to the thread that made it. AddCallback(),
// AddCallbackFromSignal(), Stop(), IsInLoopThread() and Metrics() may be called from
// any thread; everything else only from the loop's thread, or from any one thread
// while the loop is not running. A loop-thread-only call from another thread while
// the loop runs is a check failure in debug builds (free in NDEBUG builds).
//
// Time: timeouts use the loop's clock (RealClock(): monotonic, on the Unix epoch; see
// timers/clock.h). AddTimeout(delay) counts `delay` from the loop's cached time, read
// at most once per phase of an iteration: the first AddTimeout(delay) after the loop
// returns from polling reads the clock, later ones in the same batch reuse that
// reading, and the timeout phase reads it again (a per-iteration loop time; see
// docs/ioloop.md for how this differs from Tornado). So a timeout never fires before `delay` has
// passed since that reading, and a handler that runs long before adding a timeout can
// see it fire early by up to the time it ran: call UpdateTime() first when that
// matters. A timeout fires late by at most the poller's resolution (1 ms for epoll and
// poll, 1 us for select) plus whatever the loop was busy with when it came due.
//
// Exceptions: whatever a handler, callback or timeout throws is caught. It goes to
// the stack context active when the work was scheduled (ioloop/stack_context.h),
// else to HandleCallbackException(); the loop keeps running. A std::system_error
// with EPIPE thrown by an fd handler is ignored, as in Tornado (a peer went away).
// Nothing a user supplies escapes Start(): not an exception from
// HandleCallbackException(), nor from the log handler.
//
// Re-entrancy: the loop owns every handler, callback and timeout it is given, and
// destroys each when it is done with it: a callback right after it ran, a timeout
// right after it fired or when it is removed, a handler when it is removed, and
// everything still pending in Close() or ~IOLoop. Their destructors may call back
// into the loop (RemoveTimeout() of their own or another handle, AddTimeout(),
// AddCallback(), RemoveHandler(), ...): the loop never destroys user code while its
// own state is mid-update, so nothing runs twice, nothing vanishes, and nothing is
// touched after it is freed.
//
// Shutdown order: Stop() (any thread) -> Start() returns -> Close() -> ~IOLoop.
// Close() destroys every pending handler, timeout and callback without running them
// (repeating until their destructors add no more), then releases the poller and
// waker; with all_fds it also closes the handlers' fds. ~IOLoop does the same if
// Close() was not called, but never closes user fds.

#ifndef IOLOOP_IOLOOP_IO_LOOP_H_
#define IOLOOP_IOLOOP_IO_LOOP_H_

#include <atomic>
#include <concepts>
#include <cstdint>
#include <exception>
#include <memory>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/base/attributes.h"
#include "absl/base/optimization.h"
#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "backends/events.h"
#include "backends/poller.h"
#include "base/inline_function.h"
#include "base/mutex.h"
#include "base/recycling_allocator.h"
#include "ioloop/stack_context.h"
#include "timers/clock.h"
#include "timers/timer_heap.h"
#include "waker/waker.h"

namespace ioloop {

namespace ioloop_internal {
class BlockingWatchdog;
template <typename T, size_t kCapacity>
class SignalQueue;
}  // namespace ioloop_internal

// Handler receives the fd and the events found ready on it.
using Handler = absl::AnyInvocable<void(int fd, EventMask events)>;
using Callback = absl::AnyInvocable<void()>;

namespace ioloop_internal {
// CallbackLike / HandlerLike: a callable the loop can store directly, without first
// converting it to Callback or Handler (whose overloads take those types).
template <typename F>
concept CallbackLike =
    !std::same_as<std::decay_t<F>, Callback> && !std::same_as<std::decay_t<F>, std::nullptr_t> &&
    std::move_constructible<std::decay_t<F>> && std::invocable<std::decay_t<F>&>;
template <typename F>
concept HandlerLike =
    !std::same_as<std::decay_t<F>, Handler> && !std::same_as<std::decay_t<F>, std::nullptr_t> &&
    std::move_constructible<std::decay_t<F>> && std::invocable<std::decay_t<F>&, int, EventMask>;
}  // namespace ioloop_internal

// TimeoutHandle names a timeout for RemoveTimeout(). Default-constructed: none.
using TimeoutHandle = TimerHeap::Handle;

// LogHandler receives one complete message per call, without a trailing newline. It
// is called from the loop's thread, and from the watchdog's thread for blocking
// reports, so it must be thread-safe. An exception it throws is swallowed (the
// message then goes to stderr).
using LogHandler = absl::AnyInvocable<void(absl::string_view message)>;

// BlockingReport describes a stretch in which the loop did not return to poll.
struct BlockingReport {
  absl::Duration blocked_for;  // How long it had been busy when reported.
  std::vector<void*> frames;   // The loop thread's stack, innermost first;
                               // empty if it could not be captured.
  std::string symbolized;      // `frames` as text, one frame per line.
};

// BlockingAction runs on the watchdog thread (not in a signal handler), so it may
// log, allocate or lock freely.
using BlockingAction = absl::AnyInvocable<void(const BlockingReport&)>;

// LoopMetrics: counters for a monitoring system, since the loop was made. Cheap
// enough to leave on: each is a plain store on the loop's thread, made once per batch;
// idle_time costs two coarse clock reads per poll (Clock::CoarseNowNanos(), whose
// resolution is one kernel tick, so it is an unbiased estimate over many polls rather
// than exact per poll).
struct LoopMetrics {
  uint64_t iterations = 0;                // Times the loop went round.
  uint64_t events_dispatched = 0;         // Handler calls.
  uint64_t callbacks_run = 0;             // AddCallback() and AddCallbackFromSignal().
  uint64_t timeouts_fired = 0;            // Timeouts run.
  uint64_t wakeups_sent = 0;              // Writes to the waker by any thread.
  uint64_t signal_callbacks_dropped = 0;  // AddCallbackFromSignal() on a full queue.
  absl::Duration idle_time;               // Time spent waiting in poll (libuv's
                                          // uv_metrics_idle_time).
};

class IOLoop {
 public:
  struct Options {
    // The readiness backend. Default: NewDefaultPoller() (backends/default_poller.h).
    std::unique_ptr<Poller> poller;
    // The time source; not owned, must outlive the loop. Default: RealClock().
    Clock* clock = nullptr;
    // The cross-thread wake-up. Default: NewDefaultWaker() (waker/default_waker.h).
    std::unique_ptr<Waker> waker;
    // Where the loop logs. Default: one line per message on stderr.
    LogHandler log_handler;
  };

  // kSignalQueueCapacity: how many AddCallbackFromSignal() callbacks can wait at
  // once; more are dropped and counted (LoopMetrics::signal_callbacks_dropped).
  static constexpr size_t kSignalQueueCapacity = 256;

  // IOLoop() uses the build's default poller, RealClock() and the platform waker.
  // Failing to create them or to watch the waker (out of fds; select and a waker fd
  // >= FD_SETSIZE) aborts with a message: use Create() to get that as a status.
  IOLoop();
  explicit IOLoop(Options options);
  virtual ~IOLoop();

  IOLoop(const IOLoop&) = delete;
  IOLoop& operator=(const IOLoop&) = delete;

  // Create() is IOLoop(options), with every construction failure returned as a
  // status naming its cause instead of aborting.
  static absl::StatusOr<std::unique_ptr<IOLoop>> Create(Options options);

  // Instance() is the process-wide loop, created with IOLoop() on first use unless
  // Install() named another. Initialized() says whether it exists yet. Install()
  // makes this loop the instance (it must outlive its use as such). Thread-safe.
  static IOLoop& Instance();
  static bool Initialized();
  void Install();

  // AddHandler() calls `handler` on this loop whenever `fd` is ready for `events`
  // (kError is always included). Errors are the poller's: InvalidArgument for a bad
  // fd, AlreadyExists if `fd` has a handler, the errno otherwise; each names the fd.
  // FailedPrecondition after Close(). The handler carries the stack context active
  // now. Loop thread.
  absl::Status AddHandler(int fd, Handler handler, EventMask events);
  // AddHandler() for any callable: the same, storing it without converting it to a
  // Handler first (no allocation for callables of up to kInlineCallableSize bytes).
  template <ioloop_internal::HandlerLike F>
  absl::Status AddHandler(int fd, F&& handler, EventMask events) {
    return AddHandlerEntry(fd, HandlerFunction(std::forward<F>(handler)), events);
  }

  // UpdateHandler() changes the events `fd` is watched for. NotFound without a
  // handler. Loop thread.
  absl::Status UpdateHandler(int fd, EventMask events);

  // RemoveHandler() forgets `fd`'s handler at once: it is never called again, not even
  // for events already collected in this iteration, and a handler added later for the
  // same fd number never sees the old fd's events. A handler may remove itself or any
  // other. The handler object is destroyed before this returns, or, when it is the one
  // running, right after it returns. Returns NotFound without a handler; if the
  // poller fails to unregister, the handler is still removed and the error returned.
  // Loop thread.
  absl::Status RemoveHandler(int fd);

  // AddCallback() runs `callback` on the loop's thread on its next iteration.
  // Thread-safe. Wakes the loop only when it is asleep in poll (or about to be) and no
  // wake-up is already on its way: a post to a busy loop costs no system call.
  void AddCallback(Callback callback);
  // AddCallback() for any callable: the same, storing it without converting it to a
  // Callback first. Callables of up to kInlinePostSize bytes are stored in the queue
  // itself; larger ones in per-thread recycled blocks (base/recycling_allocator.h), so
  // posting from the loop's thread allocates nothing in steady state, while a thread
  // that only posts large callables allocates (their blocks return to the loop's
  // thread, which frees them).
  template <ioloop_internal::CallbackLike F>
  void AddCallback(F&& callback) {
    if (ABSL_PREDICT_FALSE(StackContext::Active())) {
      AddCallbackInContext(std::forward<F>(callback));
      return;
    }
    Post(std::forward<F>(callback));
  }

  // AddCallbackFromSignal() is AddCallback() for signal handlers: async-signal-safe,
  // never blocks, locks or allocates, given a callback that fits AnyInvocable's inline
  // storage (a function pointer, or a lambda capturing a pointer or two). The queue
  // holds kSignalQueueCapacity callbacks; beyond that a callback is dropped and
  // counted, and the loop logs the count. Runs with no stack context.
  void AddCallbackFromSignal(Callback callback);

  // AddTimeout() runs `callback` at `deadline` (by this loop's clock) or `delay` after
  // the loop's cached time (see "Time" above). Equal deadlines run in the order added.
  // Infinite and out-of-range values saturate: InfiniteFuture() never fires,
  // InfinitePast() is already due. Loop thread.
  TimeoutHandle AddTimeout(absl::Time deadline, Callback callback);
  TimeoutHandle AddTimeout(absl::Duration delay, Callback callback);
  // AddTimeout() for any callable: the same, storing it without converting it to a
  // Callback first (no allocation for callables of up to TimerHeap::kInlineCallbackSize
  // bytes; larger ones take a recycled block).
  template <ioloop_internal::CallbackLike F>
  TimeoutHandle AddTimeout(absl::Time deadline, F&& callback) {
    CheckLoopThread("AddTimeout");
    return EmplaceTimeout(absl::ToUnixNanos(deadline), std::forward<F>(callback));
  }
  template <ioloop_internal::CallbackLike F>
  TimeoutHandle AddTimeout(absl::Duration delay, F&& callback) {
    CheckLoopThread("AddTimeout");
    return EmplaceTimeout(DeadlineAfter(delay), std::forward<F>(callback));
  }

  // kInlineCallableSize: handlers up to this size are stored inside the loop's own
  // records; kInlinePostSize: the same for AddCallback() (small, so that the queue
  // other threads write into stays dense); AddTimeout(): TimerHeap::kInlineCallbackSize.
  // Larger callables take a recycled block.
  static constexpr size_t kInlineCallableSize = 48;
  static constexpr size_t kInlinePostSize = 16;

  // RemoveTimeout() cancels a timeout and destroys its callback at once; a no-op for a
  // timeout that fired or was removed, a null handle, or a handle of another loop.
  // Loop thread.
  void RemoveTimeout(TimeoutHandle handle) {
    CheckLoopThread("RemoveTimeout");
    timers_.Cancel(handle);
  }

  // Time() reads the loop's clock now.
  absl::Time Time() const { return clock_->Now(); }

  // UpdateTime() refreshes the cached time AddTimeout(delay) counts from (libuv's
  // uv_update_time). Loop thread.
  void UpdateTime();

  // Start() runs iterations until Stop(). If Stop() was called while the loop was not
  // running, Start() returns at once (and clears that stop), as in Tornado. Calling
  // Start() (or RunOnce()) on a loop that is already running, or that was closed, is
  // a check failure (the process aborts with a message saying so), never a hang.
  void Start();

  // RunOnce() runs one iteration whose poll waits at most `max_wait` (zero: do not
  // block), for embedding the loop in another one (libuv's UV_RUN_NOWAIT, libevent's
  // EVLOOP_NONBLOCK). Returns true while the loop should go on; false once it was
  // stopped (a pending Stop() is consumed, as Start() would) or closed. When Stop() is
  // called during the iteration, it finishes as Start() would before returning: the
  // rest of the batch, then the next iteration's callbacks and due timeouts.
  bool RunOnce(absl::Duration max_wait);

  // Stop() makes Start() return after the work in hand: the rest of the current batch
  // of ready handlers, then the next iteration's callbacks and due timeouts, but no
  // more polling. Thread-safe.
  void Stop();

  // Running() is true while Start() or RunOnce() is on the stack.
  bool Running() const { return running_.load(std::memory_order_relaxed); }

  // IsInLoopThread() is true on the thread running Start() or RunOnce(), and, before
  // the loop first runs, on the thread that made it; afterwards, on the thread that
  // last ran it. Thread-safe.
  bool IsInLoopThread() const;

  // Metrics() reads the loop's counters. Thread-safe (each counter is read
  // atomically; the set is not a snapshot).
  LoopMetrics Metrics() const;

  // completion_io() is the poller's CompletionIo (backends/completion_io.h), or nullptr
  // when the backend has none (every readiness backend) or the loop is closed. The loop
  // runs its finished operations' callbacks after dispatching each poll's ready fds,
  // with exceptions handled as for handlers (no stack context: the caller carries its
  // own). Loop thread only. Valid until Close(): whatever uses it (an IOStream) must
  // cancel its operations and stop using it before the loop is closed.
  CompletionIo* completion_io() {
    CheckLoopThread("completion_io");
    return completion_io_;
  }

  // Close() destroys every pending handler, timeout and callback (see the top of this
  // file), then releases the poller and waker; with `all_fds`, it closes every fd that
  // had a handler. FailedPrecondition while running. No other thread may call
  // AddCallback() or Stop() during or after Close(); after it, AddHandler() fails with
  // FailedPrecondition, Start() is a check failure, and callbacks are never run.
  absl::Status Close(bool all_fds = false);

  // SetBlockingSignalThreshold() arms a watchdog: whenever the loop goes longer than
  // `threshold` without returning to poll (one slow handler, callback or timeout is
  // enough), `action` runs once for that stretch, on a watchdog thread, with the loop
  // thread's stack. The stack is taken with SIGALRM delivered to the loop thread (the
  // signal Tornado uses), so the process must not use SIGALRM for anything else while
  // a threshold is set. Disarmed while polling: an idle loop never fires it.
  // absl::ZeroDuration() turns it off. Loop thread.
  void SetBlockingSignalThreshold(absl::Duration threshold, BlockingAction action);

  // SetBlockingLogThreshold() is SetBlockingSignalThreshold() with an action that logs
  // the symbolized stack through the log handler.
  void SetBlockingLogThreshold(absl::Duration threshold);

  // SetLogHandler() replaces where the loop logs (see LogHandler). Not thread-safe
  // with respect to logging in progress: set it before Start().
  void SetLogHandler(LogHandler handler);

 protected:
  // HandleCallbackException() receives every exception from a handler, callback or
  // timeout that no stack context handled. The default logs its what() through the
  // log handler. Override to do otherwise; an exception it throws is logged.
  virtual void HandleCallbackException(std::exception_ptr error);

  // Log() writes one message through the log handler (to stderr if it throws).
  void Log(absl::string_view message);

 private:
  using QueuedCallback = base::InlineFunction<void(), kInlinePostSize>;
  using HandlerFunction = base::InlineFunction<void(int, EventMask), kInlineCallableSize>;
  struct HandlerEntry {
    HandlerFunction handler;
    StackContext context;
    static void* operator new(size_t size) { return base::RecyclingAllocator::Allocate(size); }
    static void operator delete(void* p, size_t size) {
      base::RecyclingAllocator::Deallocate(p, size);
    }
  };
  // One fd's registration: the handler and the registration's number, which orders
  // it against collected events (an event collected before a registration was made is
  // not its).
  struct FdSlot {
    HandlerEntry* entry = nullptr;
    uint64_t registration = 0;
  };
  using SignalQueue = ioloop_internal::SignalQueue<Callback, kSignalQueueCapacity>;
  class RunScope;
  struct Unchecked {};

  // IOLoop(options, Unchecked()) takes the parts; Init() then does the construction
  // work that can fail.
  IOLoop(Options options, Unchecked);
  absl::Status Init();
  // CheckLoopThread() is the debug check of loop-thread-only calls.
  void CheckLoopThread(const char* method) const {
#ifndef NDEBUG
    CheckLoopThreadSlow(method);
#else
    (void)method;
#endif
  }
  void CheckLoopThreadSlow(const char* method) const;
  absl::Status AddHandlerEntry(int fd, HandlerFunction&& handler, EventMask events);
  // Post() queues a callable for the next iteration (constructed in place, under the
  // lock) and wakes the loop if it sleeps in poll.
  template <typename F>
  void Post(F&& callback) {
    bool wake;
    {
      MutexLock lock(callbacks_mu_);
      callbacks_.emplace_back(std::forward<F>(callback));
      wake = polling_ && !wake_pending_;
      wake_pending_ = wake_pending_ || wake;
    }
    if (ABSL_PREDICT_FALSE(wake)) Wake();
  }
  template <typename F>
  ABSL_ATTRIBUTE_NOINLINE void AddCallbackInContext(F&& callback) {
    AddCallback(Callback(std::forward<F>(callback)));
  }
  // DeadlineAfter() is the deadline `delay` after the cached time, saturating. The
  // last delay's conversion to nanoseconds is remembered: a server re-arms the same
  // idle timeout over and over.
  int64_t DeadlineAfter(absl::Duration delay) {
    int64_t deadline;
    if (ABSL_PREDICT_TRUE(delay == last_delay_) &&
        !__builtin_add_overflow(CachedNowNanos(), last_delay_ns_, &deadline)) {
      return deadline;
    }
    return DeadlineAfterSlow(delay);
  }
  int64_t DeadlineAfterSlow(absl::Duration delay);
  template <typename F>
  TimeoutHandle EmplaceTimeout(int64_t deadline_ns, F&& callback) {
    if (ABSL_PREDICT_FALSE(StackContext::Active())) {
      return EmplaceTimeoutInContext(deadline_ns, std::forward<F>(callback));
    }
    return timers_.Emplace(deadline_ns, std::forward<F>(callback));
  }
  // Out of line, so that the common path keeps no Callback on its stack.
  template <typename F>
  ABSL_ATTRIBUTE_NOINLINE TimeoutHandle EmplaceTimeoutInContext(int64_t deadline_ns, F&& callback) {
    return AddTimeoutNanos(deadline_ns, Callback(std::forward<F>(callback)));
  }
  FdSlot* FindSlot(int fd) {
    if (ABSL_PREDICT_TRUE(static_cast<unsigned>(fd) < fds_.size())) return &fds_[fd];
    return FindSparseSlot(fd);
  }
  FdSlot* FindSparseSlot(int fd);
  FdSlot& SlotFor(int fd);
  void EraseSlot(int fd);
  int64_t CachedNowNanos() {
    if (ABSL_PREDICT_TRUE(now_valid_)) return now_ns_;
    return ReadNowNanos();
  }
  int64_t ReadNowNanos();
  TimeoutHandle AddTimeoutNanos(int64_t deadline_ns, Callback&& callback);
  void RunCallbacks();
  void RunDueTimeouts();
  void PollAndDispatch(absl::Duration max_wait);
  absl::Duration PollTimeout(absl::Duration max_wait);
  void Dispatch(uint64_t registrations_before_poll);
  void Wake();
  template <typename F>
  ABSL_ATTRIBUTE_ALWAYS_INLINE void RunGuarded(const StackContext& context, F&& f,
                                               bool from_handler);
  void ReportException(std::exception_ptr error, bool from_handler);
  // Teardown() destroys every pending handler, timeout and callback, repeating until
  // their destructors add no more. Idempotent.
  absl::Status Teardown(bool close_fds);
  static void Bump(std::atomic<uint64_t>& counter) {
    counter.store(counter.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }

  std::unique_ptr<Poller> poller_;
  CompletionIo* completion_io_ = nullptr;  // poller_'s, if it has one.
  Clock* clock_;
  std::unique_ptr<Waker> waker_;
  int waker_fd_ = -1;
  LogHandler log_handler_;

  // Loop-thread state.
  TimerHeap timers_;
  std::vector<FdSlot> fds_;                      // Indexed by fd, below kDenseFdLimit.
  absl::flat_hash_map<int, FdSlot> sparse_fds_;  // fds at or above it.
  size_t handler_count_ = 0;
  std::vector<PollEvent> ready_;
  std::vector<QueuedCallback> running_callbacks_;
  HandlerEntry* dispatching_ = nullptr;
  std::unique_ptr<HandlerEntry> retired_;  // The running handler, if it removed itself.
  uint64_t next_registration_ = 1;
  absl::Duration last_delay_;  // The last in-range delay given to AddTimeout()...
  int64_t last_delay_ns_ = 0;  // ...in nanoseconds.
  int64_t now_ns_ = 0;         // The cached time AddTimeout(delay) counts from...
  bool now_valid_ = false;     // ...when this says it was read in the current phase.
  uint64_t poll_failures_ = 0;
  uint64_t overflows_logged_ = 0;
  bool closed_ = false;

  // Shared with other threads.
  Mutex callbacks_mu_;
  std::vector<QueuedCallback> callbacks_ ABSL_GUARDED_BY(callbacks_mu_);
  // polling_: the loop looked at callbacks_ and found nothing, and will sleep (or is
  // asleep) in poll until woken; cleared when it next drains callbacks_.
  bool polling_ ABSL_GUARDED_BY(callbacks_mu_) = false;
  // wake_pending_: a wake-up was sent since the loop last drained callbacks_.
  bool wake_pending_ ABSL_GUARDED_BY(callbacks_mu_) = false;
  // signal_wake_pending_: the same for AddCallbackFromSignal(), which cannot lock.
  std::atomic<bool> signal_wake_pending_{false};
  std::atomic<bool> running_{false};
  std::atomic<bool> stopped_{false};
  std::atomic<std::thread::id> owner_thread_;
  std::unique_ptr<SignalQueue> signal_queue_;
  std::unique_ptr<ioloop_internal::BlockingWatchdog> watchdog_;

  // Metrics (written by the loop's thread, or atomically by any).
  std::atomic<uint64_t> iterations_{0};
  std::atomic<uint64_t> events_dispatched_{0};
  std::atomic<uint64_t> callbacks_run_{0};
  std::atomic<uint64_t> timeouts_fired_{0};
  std::atomic<uint64_t> wakeups_sent_{0};
  std::atomic<uint64_t> signal_overflows_{0};
  std::atomic<int64_t> idle_ns_{0};
};

}  // namespace ioloop

#endif  // IOLOOP_IOLOOP_IO_LOOP_H_
