// NewLoopOnBackend(): an IOLoop on one named real poller backend; RealLoopFixture: a
// GoogleTest fixture parameterised by backend name that owns one, for suites
// instantiated over RealBackends() (testing/backends.h). Test-only.

#ifndef IOLOOP_TESTING_REAL_LOOP_H_
#define IOLOOP_TESTING_REAL_LOOP_H_

#include <memory>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "backends/default_poller.h"
#include "gtest/gtest.h"
#include "ioloop/io_loop.h"

namespace ioloop::testing {

// NewLoopOnBackend() returns a new loop whose poller is NewPoller(backend); the caller
// owns it. Errors: NewPoller()'s status for an unknown or refused backend, or
// IOLoop::Create()'s for a loop that cannot be built. Thread-safe.
inline absl::StatusOr<std::unique_ptr<IOLoop>> NewLoopOnBackend(absl::string_view backend) {
  absl::StatusOr<std::unique_ptr<Poller>> poller = NewPoller(backend);
  if (!poller.ok()) return poller.status();
  IOLoop::Options options;
  options.poller = *std::move(poller);
  return IOLoop::Create(std::move(options));
}

// RealLoopFixture: SetUp() builds loop_ on the backend named by GetParam() and fails
// the test if that backend cannot; loop_ lives until the fixture is destroyed.
// Derive a suite's fixture from it and instantiate the suite over RealBackends().
class RealLoopFixture : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<IOLoop>> loop = NewLoopOnBackend(GetParam());
    ASSERT_TRUE(loop.ok()) << "backend " << GetParam() << ": " << loop.status();
    loop_ = *std::move(loop);
  }

  std::unique_ptr<IOLoop> loop_;
};

}  // namespace ioloop::testing

#endif  // IOLOOP_TESTING_REAL_LOOP_H_
