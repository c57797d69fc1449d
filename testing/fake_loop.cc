#include "testing/fake_loop.h"

#include <unistd.h>

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "base/check.h"
#include "testing/fd_pairs.h"

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

FakeLoop::~FakeLoop() {
  loop_.reset();
  for (auto& [label, fds] : pipes_) {
    close(fds.first);
    close(fds.second);
  }
}

int FakeLoop::Fd(int label) {
  auto it = pipes_.find(label);
  if (it != pipes_.end()) return it->second.first;
  int fds[2];
  const absl::Status made = MakePipe(fds, FdMode::kBlocking);
  IOLOOP_CHECK(made.ok(), absl::StrCat("FakeLoop::Fd: ", made.ToString()));
  pipes_.emplace(label, std::make_pair(fds[0], fds[1]));
  return fds[0];
}

}  // namespace ioloop::testing
