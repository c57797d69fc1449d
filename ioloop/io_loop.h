// IOLoop: a level-triggered I/O event loop after Tornado's IOLoop.
//
// The loop composes four parts, each injectable through IOLoop::Options: a Poller
// (//backends), a TimerHeap (//timers), a Waker (//waker) and a Clock (//timers).
// Tests run the same loop on testing::FakePoller and testing::FakeClock.
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
//   3. if Stop() was called, return from Start() here;
//   4. poll: timeout zero if callbacks are queued, else until the next deadline, else
//      without limit;
//   5. dispatch the ready fds (their order among themselves is unspecified).
//
// Threads: an IOLoop belongs to the thread that calls Start(). AddCallback(),
// AddCallbackFromSignal() and Stop() may be called from any thread (the first two
// also before Start()); everything else only from the loop's thread (or before
// Start()).
//
// Exceptions: whatever a handler, callback or timeout throws is caught. It goes to
// the stack context active when the work was scheduled (ioloop/stack_context.h),
// else to HandleCallbackException(); the loop keeps running. A std::system_error
// with EPIPE thrown by an fd handler is ignored, as in Tornado (a peer went away).
//
// Shutdown order: Stop() (any thread) -> Start() returns -> Close() -> destructor.
// Close() releases the poller and waker (and with all_fds, closes the handlers'
// fds); the destructor does the same if Close() was not called, but never closes
// user fds.

#ifndef IOLOOP_IOLOOP_IO_LOOP_H_
#define IOLOOP_IOLOOP_IO_LOOP_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "backends/events.h"
#include "backends/poller.h"
#include "ioloop/stack_context.h"
#include "timers/clock.h"
#include "timers/timer_heap.h"
#include "waker/waker_interface.h"

namespace ioloop {

namespace ioloop_internal {
class BlockingWatchdog;
}  // namespace ioloop_internal

// Handler receives the fd and the events found ready on it.
using Handler = absl::AnyInvocable<void(int fd, EventMask events)>;
using Callback = absl::AnyInvocable<void()>;

// TimeoutHandle names a timeout for RemoveTimeout(). Default-constructed: none.
using TimeoutHandle = TimerHeap::Handle;

// LogHandler receives one complete message per call, without a trailing newline. It
// is called from the loop's thread, and from the watchdog's thread for blocking
// reports, so it must be thread-safe.
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

class IOLoop {
 public:
  struct Options {
    // The readiness backend. Default: NewDefaultPoller() (backends/default_poller.h).
    std::unique_ptr<Poller> poller;
    // The time source; not owned, must outlive the loop. Default: RealClock().
    Clock* clock = nullptr;
    // The cross-thread wake-up. Default: NewDefaultWaker() (waker/waker.h).
    std::unique_ptr<Waker> waker;
    // Where the loop logs. Default: one line per message on stderr.
    LogHandler log_handler;
  };

  // kSignalQueueCapacity: how many AddCallbackFromSignal() callbacks can wait at
  // once; more are dropped and counted (SignalQueueOverflows()).
  static constexpr size_t kSignalQueueCapacity = 256;

  // IOLoop() uses the build's default poller, RealClock() and the platform waker. A
  // failure to create them (out of fds) aborts with a message; inject parts created
  // with the status-returning factories to handle that instead.
  IOLoop();
  explicit IOLoop(Options options);
  virtual ~IOLoop();

  IOLoop(const IOLoop&) = delete;
  IOLoop& operator=(const IOLoop&) = delete;

  // Instance() is the process-wide loop, created with IOLoop() on first use unless
  // Install() named another. Initialized() says whether it exists yet. Install()
  // makes this loop the instance (it must outlive its use as such). Thread-safe.
  static IOLoop& Instance();
  static bool Initialized();
  void Install();

  // AddHandler() calls `handler` on this loop whenever `fd` is ready for `events`
  // (kError is always included). Errors are the poller's: InvalidArgument for a bad
  // fd, AlreadyExists if `fd` has a handler, the errno otherwise; each names the fd.
  // The handler carries the stack context active now.
  absl::Status AddHandler(int fd, Handler handler, EventMask events);

  // UpdateHandler() changes the events `fd` is watched for. NotFound without a
  // handler.
  absl::Status UpdateHandler(int fd, EventMask events);

  // RemoveHandler() forgets `fd`'s handler at once: it is never called again, not even
  // for events already collected in this iteration, and a handler added later for the
  // same fd number never sees the old fd's events. A handler may remove itself or any
  // other. The handler object is destroyed immediately, or, when it is the one
  // running, right after it returns. Returns NotFound without a handler; if the
  // poller fails to unregister, the handler is still removed and the error returned.
  absl::Status RemoveHandler(int fd);

  // AddCallback() runs `callback` on the loop's thread on its next iteration.
  // Thread-safe. Wakes the loop only when needed: not from the loop's own thread, and
  // not when a wake is already pending.
  void AddCallback(Callback callback);

  // AddCallbackFromSignal() is AddCallback() for signal handlers: async-signal-safe,
  // never blocks, locks or allocates, given a callback that fits AnyInvocable's inline
  // storage (a function pointer, or a lambda capturing a pointer or two). The queue
  // holds kSignalQueueCapacity callbacks; beyond that a callback is dropped and
  // counted, and the loop logs the count. Runs with no stack context.
  void AddCallbackFromSignal(Callback callback);

  // SignalQueueOverflows() counts callbacks AddCallbackFromSignal() had to drop.
  uint64_t SignalQueueOverflows() const { return signal_overflows_.load(); }

  // WakeupsSent() counts the wake-ups AddCallback()/Stop() sent to the waker.
  uint64_t WakeupsSent() const { return wakeups_sent_.load(); }

  // AddTimeout() runs `callback` at `deadline` (by this loop's clock) or `delay` from
  // now. Equal deadlines run in the order added. Loop thread only.
  TimeoutHandle AddTimeout(absl::Time deadline, Callback callback);
  TimeoutHandle AddTimeout(absl::Duration delay, Callback callback);

  // RemoveTimeout() cancels a timeout and frees it at once; a no-op for a timeout
  // that fired or was removed, or a null handle.
  void RemoveTimeout(TimeoutHandle handle);

  // Time() is the loop's clock.
  absl::Time Time() const { return clock_->Now(); }

  // Start() runs iterations until Stop(). If Stop() was called while the loop was not
  // running, Start() returns at once (and clears that stop), as in Tornado. Calling
  // Start() on a loop that is already running, or that was closed, is a check failure
  // (the process aborts with a message saying so), never a hang.
  void Start();

  // Stop() makes Start() return after the work in hand: the rest of the current batch
  // of ready handlers, then the next iteration's callbacks and due timeouts, but no
  // more polling. Thread-safe.
  void Stop();

  // Running() is true between Start() and its return.
  bool Running() const { return running_.load(); }

  // Close() releases the poller and waker; with `all_fds`, it first closes every fd
  // that has a handler. FailedPrecondition while running. No other thread may call
  // AddCallback() or Stop() during or after Close(); after it, AddHandler() fails with
  // FailedPrecondition, Start() is a check failure, and callbacks are never run.
  absl::Status Close(bool all_fds = false);

  // SetBlockingSignalThreshold() arms a watchdog: whenever the loop goes longer than
  // `threshold` without returning to poll (one slow handler, callback or timeout is
  // enough), `action` runs once for that stretch, on a watchdog thread, with the loop
  // thread's stack. The stack is taken with SIGALRM delivered to the loop thread (the
  // signal Tornado uses), so the process must not use SIGALRM for anything else while
  // a threshold is set. Disarmed while polling: an idle loop never fires it.
  // absl::ZeroDuration() turns it off. Loop thread, or before Start().
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

  // Log() writes one message through the log handler.
  void Log(absl::string_view message);

 private:
  struct HandlerEntry {
    Handler handler;
    StackContext context;
    uint64_t registration;  // Orders registrations against collected events.
  };
  class SignalQueue;

  static Callback WithActiveContext(Callback&& callback);
  TimeoutHandle AddTimeoutNanos(int64_t deadline_ns, Callback&& callback);
  void RunIteration();
  void RunCallbacks();
  void RunDueTimeouts();
  absl::Duration PollTimeout();
  void Dispatch(uint64_t registrations_before_poll);
  bool HasQueuedCallbacks();
  void WakeIfNeeded();
  template <typename F>
  void RunGuarded(const StackContext& context, F& f, bool from_handler);
  void ReportException(std::exception_ptr error, bool from_handler);

  std::unique_ptr<Poller> poller_;
  Clock* clock_;
  std::unique_ptr<Waker> waker_;
  int waker_fd_ = -1;
  LogHandler log_handler_;

  // Loop-thread state.
  TimerHeap timers_;
  std::vector<std::unique_ptr<HandlerEntry>> handlers_;  // Indexed by fd.
  std::vector<PollEvent> ready_;
  std::vector<Callback> running_callbacks_;
  HandlerEntry* dispatching_ = nullptr;
  std::unique_ptr<HandlerEntry> retired_;  // The running handler, if it removed itself.
  uint64_t next_registration_ = 1;
  uint64_t poll_failures_ = 0;
  uint64_t overflows_logged_ = 0;
  bool closed_ = false;

  // Shared with other threads.
  std::mutex callbacks_mu_;
  std::vector<Callback> callbacks_ ABSL_GUARDED_BY(callbacks_mu_);
  std::atomic<bool> wake_pending_{false};
  std::atomic<bool> running_{false};
  std::atomic<bool> stopped_{false};
  std::atomic<uint64_t> wakeups_sent_{0};
  std::atomic<uint64_t> signal_overflows_{0};
  std::unique_ptr<SignalQueue> signal_queue_;
  std::unique_ptr<ioloop_internal::BlockingWatchdog> watchdog_;
};

}  // namespace ioloop

#endif  // IOLOOP_IOLOOP_IO_LOOP_H_
