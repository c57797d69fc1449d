#include "idle_timeout.h"

IdleTimeout::IdleTimeout(ioloop::IOLoop* loop, absl::Duration limit, ioloop::Callback on_idle)
    : loop_(loop), limit_(limit), on_idle_(std::move(on_idle)) {
  Touch();
}

IdleTimeout::~IdleTimeout() { loop_->RemoveTimeout(timeout_); }

void IdleTimeout::Touch() {
  loop_->RemoveTimeout(timeout_);
  timeout_ = loop_->AddTimeout(limit_, [this] { on_idle_(); });
}
