// PeriodicCallback: run a callback every `period` on an IOLoop.
//
// As Tornado's PeriodicCallback: runs keep their phase (start + k * period); when the
// loop falls behind, the missed runs are skipped, not replayed in a burst. An
// exception from the callback is reported like any other (stack context, then
// IOLoop::HandleCallbackException()) and the schedule goes on.
//
// Re-entrancy: the callback may call Stop() or Start(), and may destroy its own
// PeriodicCallback (as a connection deleting itself would): the object then stops,
// and nothing of it is touched after its callback returns. The callback object
// itself lives until that return.
//
// Thread-safety: use it from its loop's thread (or before the loop starts).

#ifndef IOLOOP_IOLOOP_PERIODIC_CALLBACK_H_
#define IOLOOP_IOLOOP_PERIODIC_CALLBACK_H_

#include "absl/time/time.h"
#include "ioloop/io_loop.h"

namespace ioloop {

class PeriodicCallback {
 public:
  // A non-positive `period` is a check failure (it would be a busy loop). `loop` must
  // outlive this object; the default, IOLoop::Instance(), creates the process-wide
  // loop if there is none yet.
  PeriodicCallback(Callback callback, absl::Duration period, IOLoop* loop = &IOLoop::Instance());
  ~PeriodicCallback();  // Stops it; may run inside its own callback.
  PeriodicCallback(const PeriodicCallback&) = delete;
  PeriodicCallback& operator=(const PeriodicCallback&) = delete;

  // Start() schedules the first run one period from now. No-op if running.
  void Start();
  // Stop() cancels the next run. No-op if stopped.
  void Stop();
  bool IsRunning() const { return running_; }

 private:
  void Run();
  void ScheduleNext();

  Callback callback_;
  const absl::Duration period_;
  IOLoop* const loop_;
  bool running_ = false;
  absl::Time next_run_;
  TimeoutHandle timeout_;
  // While the callback runs: where ~PeriodicCallback() records that it ran.
  bool* destroyed_ = nullptr;
};

}  // namespace ioloop

#endif  // IOLOOP_IOLOOP_PERIODIC_CALLBACK_H_
