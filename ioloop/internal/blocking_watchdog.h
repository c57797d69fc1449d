// BlockingWatchdog: notices when a loop thread stays busy past a threshold.
//
// The loop calls Busy() when it leaves poll (or starts) and Idle() when it is about to
// poll (or stops): two atomic stores and a steady-clock read, nothing else on the
// loop's path. A watchdog thread sleeps until the current busy stretch would cross
// the threshold; if the same stretch is still running then, it takes the loop
// thread's stack (SIGALRM delivered to that thread; the handler only records return
// addresses) and runs the action on the watchdog thread.
// Each stretch is reported at most once.

#ifndef IOLOOP_IOLOOP_INTERNAL_BLOCKING_WATCHDOG_H_
#define IOLOOP_IOLOOP_INTERNAL_BLOCKING_WATCHDOG_H_

#include <pthread.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/time/time.h"
#include "base/mutex.h"

namespace ioloop::ioloop_internal {

struct StackSample {
  std::vector<void*> frames;
  std::string symbolized;
};

class BlockingWatchdog {
 public:
  using Fire = absl::AnyInvocable<void(absl::Duration blocked_for, const StackSample& stack)>;

  BlockingWatchdog(absl::Duration threshold, Fire fire);
  ~BlockingWatchdog();  // Stops and joins the watchdog thread.
  BlockingWatchdog(const BlockingWatchdog&) = delete;
  BlockingWatchdog& operator=(const BlockingWatchdog&) = delete;

  // Busy() / Idle(): called by the loop thread only.
  void Busy();
  void Idle() { stretch_.fetch_add(1, std::memory_order_release); }

 private:
  void Run();
  StackSample CaptureLoopStack();

  const absl::Duration threshold_;
  Fire fire_;
  std::atomic<uint64_t> stretch_{0};  // Odd while busy.
  std::atomic<int64_t> busy_since_ns_{0};
  std::atomic<pthread_t> loop_thread_{};
  Mutex mu_;
  CondVar wake_;
  bool quit_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace ioloop::ioloop_internal

#endif  // IOLOOP_IOLOOP_INTERNAL_BLOCKING_WATCHDOG_H_
