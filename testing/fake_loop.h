// FakeLoop: a real IOLoop on a FakePoller and a FakeClock, ready for a test.
//
// The same loop code as production, with time and readiness under the test's
// control (Envoy's simulated time and gRPC's fuzzing event engine follow the same
// idea): timeouts fire in zero real time, I/O readiness is whatever the test
// injects, and everything a callback throws or the loop logs is recorded.
//
//   class MyTest : public ::testing::Test {
//    protected:
//     ioloop::testing::FakeLoop fake_;
//   };
//   TEST_F(MyTest, FiresAfterTenMinutes) {
//     bool fired = false;
//     fake_.loop().AddTimeout(absl::Minutes(10), [&] { fired = true; fake_.loop().Stop(); });
//     fake_.loop().Start();                      // returns at once, 10 fake minutes later
//     EXPECT_TRUE(fired);
//     EXPECT_EQ(fake_.clock().Now() - fake_.start(), absl::Minutes(10));
//   }
//
// Thread-safety: as IOLoop; the recorded errors and logs are for the loop's thread.

#ifndef IOLOOP_TESTING_FAKE_LOOP_H_
#define IOLOOP_TESTING_FAKE_LOOP_H_

#include <exception>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "ioloop/io_loop.h"
#include "testing/fake_clock.h"
#include "testing/fake_poller.h"

namespace ioloop::testing {

// RecordingLoop is an IOLoop that keeps the what() of every exception that reaches
// HandleCallbackException() instead of logging it.
class RecordingLoop : public IOLoop {
 public:
  using IOLoop::IOLoop;
  const std::vector<std::string>& errors() const { return errors_; }

 protected:
  void HandleCallbackException(std::exception_ptr error) override;

 private:
  std::vector<std::string> errors_;
};

class FakeLoop {
 public:
  // FakeLoop() makes the clock (starting at FakeClock's fixed default), a FakePoller
  // that advances it, and the loop, whose log handler records every message.
  FakeLoop();
  // ~FakeLoop() destroys the loop, then closes the fds Fd() opened.
  ~FakeLoop();
  FakeLoop(const FakeLoop&) = delete;
  FakeLoop& operator=(const FakeLoop&) = delete;

  RecordingLoop& loop() { return *loop_; }
  FakePoller& poller() { return *poller_; }
  FakeClock& clock() { return clock_; }
  // start() is the clock's reading when the loop was made.
  absl::Time start() const { return start_; }
  // errors() are the exceptions HandleCallbackException() received, by what().
  const std::vector<std::string>& errors() const { return loop_->errors(); }
  // logs() are the messages the loop logged.
  const std::vector<std::string>& logs() const { return logs_; }

  // Fd() is a real open descriptor (a pipe's read end) standing for `label`: the same
  // fd for the same label, for the FakeLoop's life. The FakePoller, like the real
  // backends, refuses closed fds, so tests register these instead of made-up numbers.
  int Fd(int label);

  // DestroyLoopTestOnly() destroys the loop now (to test ~IOLoop); loop() may not be
  // used afterwards.
  void DestroyLoopTestOnly() { loop_.reset(); }

 private:
  FakeClock clock_;
  FakePoller* poller_ = nullptr;  // Owned by loop_.
  std::vector<std::string> logs_;
  absl::Time start_;
  std::map<int, std::pair<int, int>> pipes_;  // label -> the pipe behind Fd(label)
  std::unique_ptr<RecordingLoop> loop_;
};

}  // namespace ioloop::testing

#endif  // IOLOOP_TESTING_FAKE_LOOP_H_
