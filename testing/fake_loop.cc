#include "testing/fake_loop.h"

#include <utility>

namespace ioloop::testing {

void RecordingLoop::HandleCallbackException(std::exception_ptr error) {
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    errors_.push_back(e.what());
  } catch (...) {
    errors_.push_back("(not a std::exception)");
  }
}

FakeLoop::FakeLoop() : start_(clock_.Now()) {
  auto poller = std::make_unique<FakePoller>(&clock_);
  poller_ = poller.get();
  IOLoop::Options options;
  options.poller = std::move(poller);
  options.clock = &clock_;
  options.log_handler = [this](absl::string_view message) { logs_.emplace_back(message); };
  loop_ = std::make_unique<RecordingLoop>(std::move(options));
}

}  // namespace ioloop::testing
