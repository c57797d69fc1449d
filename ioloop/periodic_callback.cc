#include "ioloop/periodic_callback.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "base/check.h"

namespace ioloop {

PeriodicCallback::PeriodicCallback(Callback callback, absl::Duration period, IOLoop* loop)
    : callback_(std::move(callback)), period_(period), loop_(loop) {
  IOLOOP_CHECK(period > absl::ZeroDuration(),
               absl::StrCat("PeriodicCallback: the period must be positive, got ",
                            absl::FormatDuration(period))
                   .c_str());
  IOLOOP_CHECK(loop != nullptr, "PeriodicCallback: no loop");
}

PeriodicCallback::~PeriodicCallback() {
  if (destroyed_ != nullptr) *destroyed_ = true;
  Stop();
}

void PeriodicCallback::Start() {
  if (running_) return;
  running_ = true;
  next_run_ = loop_->Time();
  ScheduleNext();
}

void PeriodicCallback::Stop() {
  if (!running_) return;
  running_ = false;
  loop_->RemoveTimeout(timeout_);
  timeout_ = TimeoutHandle();
}

void PeriodicCallback::Run() {
  if (!running_) return;
  // The callback may destroy this object, callback_ included: run it from a local, and
  // afterwards touch nothing of `this` unless it survived. The local is destroyed last.
  Callback callback = std::move(callback_);
  bool destroyed = false;
  destroyed_ = &destroyed;
  // Schedule the next run even if the callback throws; the loop reports the exception.
  struct Reschedule {
    PeriodicCallback* self;
    Callback& callback;
    const bool& destroyed;
    ~Reschedule() {
      if (destroyed) return;
      self->destroyed_ = nullptr;
      self->callback_ = std::move(callback);
      self->ScheduleNext();
    }
  } reschedule{this, callback, destroyed};
  callback();
}

void PeriodicCallback::ScheduleNext() {
  if (!running_) return;
  const absl::Time now = loop_->Time();
  if (next_run_ <= now) {
    // Skip every run that is already due: keep the phase, never burst.
    absl::Duration unused_remainder;
    const int64_t missed = absl::IDivDuration(now - next_run_, period_, &unused_remainder);
    next_run_ += period_ * (missed + 1);
  }
  timeout_ = loop_->AddTimeout(next_run_, [this] { Run(); });
}

}  // namespace ioloop
