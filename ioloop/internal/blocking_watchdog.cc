#include "ioloop/internal/blocking_watchdog.h"

#include <execinfo.h>
#include <signal.h>

#include <chrono>
#include <cstdio>

#include "absl/debugging/symbolize.h"
#include "absl/strings/str_format.h"

namespace ioloop::ioloop_internal {
namespace {

constexpr int kMaxFrames = 64;

int64_t SteadyNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// One stack capture at a time, process-wide; the signal handler fills it in.
struct CaptureSlot {
  std::atomic<uint64_t> armed{0};  // Id of the capture in progress; 0: none.
  std::atomic<uint64_t> done{0};   // Id of the last capture the handler finished.
  std::atomic<pthread_t> target{};
  void* frames[kMaxFrames];
  std::atomic<int> depth{0};
};
CaptureSlot g_slot;
Mutex g_capture_mu;  // Serialises captures (watchdog threads only).
uint64_t g_next_capture_id = 0;

void OnStackSignal(int, siginfo_t*, void*) {
  const int saved_errno = errno;
  const uint64_t id = g_slot.armed.load(std::memory_order_acquire);
  if (id != 0 && pthread_equal(g_slot.target.load(), pthread_self())) {
    // backtrace() unwinds with the compiler's unwind tables, through the signal frame
    // into the interrupted code (Debian's Abseil stack walker needs frame pointers its
    // own library lacks). Its one unsafe step, loading the unwinder, was done at
    // install time.
    g_slot.depth.store(backtrace(g_slot.frames, kMaxFrames), std::memory_order_relaxed);
    g_slot.done.store(id, std::memory_order_release);
  }
  errno = saved_errno;
}

void InstallHandlerOnce() {
  static std::once_flag once;
  std::call_once(once, [] {
    void* warm_up[2];
    backtrace(warm_up, 2);  // Loads the unwinder now, not inside the signal handler.
    struct sigaction action = {};
    action.sa_sigaction = &OnStackSignal;
    action.sa_flags = SA_RESTART | SA_SIGINFO;  // Interrupted system calls in user code resume.
    sigemptyset(&action.sa_mask);
    sigaction(SIGALRM, &action, nullptr);
  });
}

}  // namespace

BlockingWatchdog::BlockingWatchdog(absl::Duration threshold, Fire fire)
    : threshold_(threshold), fire_(std::move(fire)) {
  InstallHandlerOnce();
  thread_ = std::thread([this] { Run(); });
}

BlockingWatchdog::~BlockingWatchdog() {
  {
    MutexLock lock(mu_);
    quit_ = true;
  }
  wake_.SignalAll();
  thread_.join();
}

void BlockingWatchdog::Busy() {
  loop_thread_.store(pthread_self(), std::memory_order_relaxed);
  busy_since_ns_.store(SteadyNanos(), std::memory_order_relaxed);
  stretch_.fetch_add(1, std::memory_order_release);
}

void BlockingWatchdog::Run() {
  const int64_t threshold_ns = absl::ToInt64Nanoseconds(threshold_);
  uint64_t reported = 0;  // Even stretch values are idle, so 0 means none.
  MutexLock lock(mu_);
  while (!quit_) {
    const uint64_t stretch = stretch_.load(std::memory_order_acquire);
    if ((stretch & 1) == 0 || stretch == reported) {
      // Idle, or already reported: look again after one threshold.
      wake_.WaitFor(mu_, std::chrono::nanoseconds(threshold_ns));
      continue;
    }
    const int64_t since = busy_since_ns_.load(std::memory_order_relaxed);
    const int64_t now = SteadyNanos();
    if (now - since < threshold_ns) {
      wake_.WaitFor(mu_, std::chrono::nanoseconds(since + threshold_ns - now));
      continue;
    }
    if (stretch_.load(std::memory_order_acquire) != stretch) continue;
    reported = stretch;
    // Unlocked while it reports: the action may take long, and ~BlockingWatchdog must
    // be able to set quit_ meanwhile.
    mu_.Unlock();
    StackSample stack = CaptureLoopStack();
    fire_(absl::Nanoseconds(SteadyNanos() - since), stack);
    mu_.Lock();
  }
}

StackSample BlockingWatchdog::CaptureLoopStack() {
  StackSample sample;
  MutexLock lock(g_capture_mu);
  const uint64_t id = ++g_next_capture_id;
  g_slot.target.store(loop_thread_.load());
  g_slot.armed.store(id, std::memory_order_release);
  if (pthread_kill(g_slot.target.load(), SIGALRM) == 0) {
    // The handler runs as soon as the loop thread is scheduled; give it up to 1 s.
    for (int i = 0; i < 1000 && g_slot.done.load(std::memory_order_acquire) != id; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  g_slot.armed.store(0, std::memory_order_release);
  if (g_slot.done.load(std::memory_order_acquire) != id) return sample;
  const int depth = g_slot.depth.load(std::memory_order_relaxed);
  sample.frames.assign(g_slot.frames, g_slot.frames + depth);
  for (int i = 0; i < depth; ++i) {
    char name[512];
    const char* symbol = absl::Symbolize(sample.frames[i], name, sizeof name) ? name : "(unknown)";
    absl::StrAppendFormat(&sample.symbolized, "  #%d %p %s\n", i, sample.frames[i], symbol);
  }
  return sample;
}

}  // namespace ioloop::ioloop_internal
