// FakePoller: a Poller that reports only what a test injects.
//
// It records registrations like a real backend, with the same argument errors (a
// negative fd, unknown event bits, a closed fd, a second registration, an fd it does
// not hold), queues events a test injects, and hands them out on the next Poll(). With nothing
// queued, a finite timeout returns at once after advancing the attached FakeClock by that timeout,
// so a loop's timers run in zero real time. With nothing queued and no timeout, a real loop would
// sleep forever: the fake stops the test with a check failure instead.

#ifndef IOLOOP_TESTING_FAKE_POLLER_H_
#define IOLOOP_TESTING_FAKE_POLLER_H_

#include <map>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "backends/poller.h"
#include "testing/fake_clock.h"

namespace ioloop::testing {

// FakePoller is used from the loop's thread (and the test's code running there).
class FakePoller final : public Poller {
 public:
  // FdCheck: whether Register() refuses a closed fd, as the real backends do
  // (kRequireOpen), or takes any non-negative number (kAnyNumber), for a model that
  // needs fd numbers no process could open (a fuzzer's INT_MAX).
  enum class FdCheck { kRequireOpen, kAnyNumber };

  explicit FakePoller(FakeClock* clock = nullptr, FdCheck check = FdCheck::kRequireOpen)
      : clock_(clock), check_(check) {}

  // Inject() queues `events` for `fd`; the next Poll() reports them if `fd` is then
  // registered, limited to what it is registered for plus kError. Injections for
  // one fd before a Poll() merge into one event.
  void Inject(int fd, EventMask events);

  // SetPollHook() runs `hook` at the start of every Poll(), with its timeout: a test
  // can inject events or change registrations "while the loop sleeps".
  void SetPollHook(absl::AnyInvocable<void(absl::Duration timeout)> hook) {
    hook_ = std::move(hook);
  }

  bool IsRegistered(int fd) const { return registered_.count(fd) != 0; }
  // RegisteredEvents() is what `fd` is registered for; kNone if it is not.
  EventMask RegisteredEvents(int fd) const;
  size_t RegisteredCount() const { return registered_.size(); }
  int poll_count() const { return poll_count_; }
  absl::Duration last_timeout() const { return last_timeout_; }

  absl::Status Register(int fd, EventMask events) override;
  absl::Status Modify(int fd, EventMask events) override;
  absl::Status Unregister(int fd) override;
  absl::Status Poll(absl::Duration timeout, std::vector<PollEvent>& ready) override;
  absl::string_view Name() const override { return "fake"; }

 private:
  FakeClock* const clock_;
  const FdCheck check_;
  std::map<int, EventMask> registered_;
  std::vector<PollEvent> queued_;
  absl::AnyInvocable<void(absl::Duration)> hook_;
  int poll_count_ = 0;
  absl::Duration last_timeout_;
};

}  // namespace ioloop::testing

#endif  // IOLOOP_TESTING_FAKE_POLLER_H_
