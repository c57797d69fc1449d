// StreamBackendTest: a test fixture parameterised over the loops the stream layer
// (net/) must survive load and faults on: the build's default poller and io_uring.
// IOStream picks its I/O path from its loop's poller (readiness on epoll; on io_uring,
// whatever IOStream does there: readiness through io_uring poll, or recv/send as
// io_uring operations), so each case runs once per path. io_uring is skipped, with the
// kernel's reason, only where NewPoller("io_uring") says Unavailable (the backend's
// IoUringSupport() refused: seccomp, io_uring_disabled, an old kernel).
//
//   class NetFaultTest : public StreamBackendTest {};
//   TEST_P(NetFaultTest, Something) { EchoServer::Listen(&loop(), {}); ... }
//   INSTANTIATE_TEST_SUITE_P(Backends, NetFaultTest, ::testing::ValuesIn(StreamBackends()),
//                            StreamBackendName);
//
// Test-only. loop() is created in SetUp() and used on the test's thread (or handed to
// one loop thread, as the tests do).

#ifndef IOLOOP_RELIABILITY_STREAM_BACKENDS_H_
#define IOLOOP_RELIABILITY_STREAM_BACKENDS_H_

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "backends/default_poller.h"
#include "gtest/gtest.h"
#include "ioloop/io_loop.h"

namespace ioloop::reliability {

// StreamBackends(): "default" (IOLoop's own choice: NewDefaultPoller()) and "io_uring".
// Under --//backends:poller=io_uring both are io_uring; the default one then also
// covers the flag's fallback to epoll where io_uring is refused.
inline std::vector<std::string> StreamBackends() { return {"default", "io_uring"}; }

inline std::string StreamBackendName(const ::testing::TestParamInfo<std::string>& info) {
  return info.param;
}

class StreamBackendTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    IOLoop::Options options;
    if (GetParam() != "default") {
      absl::StatusOr<std::unique_ptr<Poller>> poller = NewPoller(GetParam());
      if (absl::IsUnavailable(poller.status())) GTEST_SKIP() << poller.status();
      ASSERT_TRUE(poller.ok()) << poller.status();
      options.poller = *std::move(poller);
    }
    loop_ = std::make_unique<IOLoop>(std::move(options));
  }

  IOLoop& loop() { return *loop_; }

 private:
  std::unique_ptr<IOLoop> loop_;
};

}  // namespace ioloop::reliability

#endif  // IOLOOP_RELIABILITY_STREAM_BACKENDS_H_
