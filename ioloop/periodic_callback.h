// PeriodicCallback: run a callback every `period` on an IOLoop.
//
// As Tornado's PeriodicCallback: runs keep their phase (start + k * period); when the
// loop falls behind, the missed runs are skipped, not replayed in a burst. An
// exception from the callback is reported like any other (stack context, then
// IOLoop::HandleCallbackException()) and the schedule goes on. Stop() may be called
// from inside the callback.
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
  // outlive this object.
  PeriodicCallback(Callback callback, absl::Duration period, IOLoop* loop = &IOLoop::Instance());
  ~PeriodicCallback();  // Stops it.
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
};

}  // namespace ioloop

#endif  // IOLOOP_IOLOOP_PERIODIC_CALLBACK_H_
