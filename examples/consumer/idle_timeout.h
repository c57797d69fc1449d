// IdleTimeout: the consumer's own code. Calls on_idle when Touch() has not been called
// for `limit`.
#ifndef CONSUMER_IDLE_TIMEOUT_H_
#define CONSUMER_IDLE_TIMEOUT_H_

#include "absl/time/time.h"
#include "ioloop/io_loop.h"

class IdleTimeout {
 public:
  IdleTimeout(ioloop::IOLoop* loop, absl::Duration limit, ioloop::Callback on_idle);
  ~IdleTimeout();
  void Touch();

 private:
  ioloop::IOLoop* loop_;
  absl::Duration limit_;
  ioloop::Callback on_idle_;
  ioloop::TimeoutHandle timeout_;
};

#endif  // CONSUMER_IDLE_TIMEOUT_H_
