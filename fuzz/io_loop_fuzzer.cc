// Fuzzes the IOLoop on FakePoller + FakeClock against a model. Random sequences of
// AddHandler / UpdateHandler / RemoveHandler / AddCallback / AddTimeout /
// RemoveTimeout / inject-event / advance, with handlers that themselves remove,
// replace (fd reuse) or add handlers mid-dispatch, must keep these properties:
//   - a removed handler is never called;
//   - no event reaches a registration made after the event was collected;
//   - every callback runs exactly once;
//   - timeouts fire exactly once unless removed, only when due, in (deadline,
//     insertion) order within an iteration.

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <vector>

#include "fuzz/fuzz_input.h"
#include "ioloop/io_loop.h"
#include "testing/fake_clock.h"
#include "testing/fake_poller.h"

namespace {

using ioloop::EventMask;
using ioloop::IOLoop;

constexpr int kFirstFd = 200;  // Clear of the waker's real fd.
constexpr int kFds = 12;

struct Harness {
  ioloop::testing::FakeClock clock;
  ioloop::testing::FakePoller* poller = nullptr;
  std::unique_ptr<IOLoop> loop;

  // fd -> registration number currently live (0: none).
  std::map<int, uint64_t> live;
  uint64_t next_registration = 1;
  uint64_t registrations_at_poll = 0;       // Registrations made before the last poll.
  std::map<uint64_t, int> registration_of;  // registration -> fd, for actions
  std::vector<uint8_t> actions;             // per registration: what its handler does
  std::vector<int> callback_runs;
  struct Timeout {
    absl::Time deadline;
    uint64_t seq;
    bool removed = false;
    int fired = 0;
    ioloop::TimeoutHandle handle;
  };
  std::vector<Timeout> timeouts;
  std::vector<size_t> fired_this_step;
  uint64_t timeout_seq = 0;

  void Add(int fd, EventMask events, uint8_t action) {
    const uint64_t r = next_registration++;
    auto handler = [this, r, fd](int got_fd, EventMask) {
      IOLOOP_FUZZ_CHECK(got_fd == fd);
      IOLOOP_FUZZ_CHECK(live[fd] == r);              // Never a removed handler.
      IOLOOP_FUZZ_CHECK(r < registrations_at_poll);  // Never an event older than it.
      OnHandler(fd, r);
    };
    if (loop->AddHandler(fd, handler, events).ok()) {
      IOLOOP_FUZZ_CHECK(live[fd] == 0);
      live[fd] = r;
      if (actions.size() <= r) actions.resize(r + 1);
      actions[r] = action;
    } else {
      IOLOOP_FUZZ_CHECK(live[fd] != 0);  // Only a registered fd may be refused.
    }
  }

  void Remove(int fd) {
    const bool ok = loop->RemoveHandler(fd).ok();
    IOLOOP_FUZZ_CHECK(ok == (live[fd] != 0));
    live[fd] = 0;
  }

  void OnHandler(int fd, uint64_t r) {
    const uint8_t action = actions[r];
    const int other = kFirstFd + (action >> 2) % kFds;
    switch (action & 3) {
      case 0:
        break;
      case 1:
        Remove(other);
        break;
      case 2:  // The other fd is closed and its number reused at once.
        Remove(other);
        Add(other, ioloop::kRead | ioloop::kWrite, static_cast<uint8_t>(action + 4));
        break;
      case 3:
        Remove(fd);
        break;
    }
  }

  void Step() {
    poller->SetPollHook([this](absl::Duration) {
      registrations_at_poll = next_registration;
      loop->Stop();
    });
    fired_this_step.clear();
    loop->Start();
    // Timeouts of one iteration fire in (deadline, insertion) order.
    for (size_t i = 1; i < fired_this_step.size(); ++i) {
      const Timeout& a = timeouts[fired_this_step[i - 1]];
      const Timeout& b = timeouts[fired_this_step[i]];
      IOLOOP_FUZZ_CHECK(a.deadline < b.deadline || (a.deadline == b.deadline && a.seq < b.seq));
    }
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ioloop::fuzz::FuzzInput in(data, size);
  Harness h;
  auto poller = std::make_unique<ioloop::testing::FakePoller>();  // Time moves only by op.
  h.poller = poller.get();
  IOLoop::Options options;
  options.poller = std::move(poller);
  options.clock = &h.clock;
  options.log_handler = [](absl::string_view) {};
  h.loop = std::make_unique<IOLoop>(std::move(options));
  // Keeps every poll timeout finite (the fake refuses to sleep forever).
  h.loop->AddTimeout(absl::Hours(1000000), [] {});

  while (!in.done()) {
    const int fd = kFirstFd + static_cast<int>(in.Below(kFds));
    switch (in.Below(9)) {
      case 0:
        h.Add(fd,
              static_cast<EventMask>(in.Below(2) ? ioloop::kRead : ioloop::kRead | ioloop::kWrite),
              in.Byte());
        break;
      case 1: {
        const bool ok = h.loop->UpdateHandler(fd, ioloop::kWrite).ok();
        IOLOOP_FUZZ_CHECK(ok == (h.live[fd] != 0));
        break;
      }
      case 2:
        h.Remove(fd);
        break;
      case 3: {
        const size_t id = h.callback_runs.size();
        h.callback_runs.push_back(0);
        h.loop->AddCallback([&h, id] { ++h.callback_runs[id]; });
        break;
      }
      case 4: {
        const absl::Duration delay = absl::Milliseconds(static_cast<int>(in.Below(40)) - 5);
        const size_t id = h.timeouts.size();
        h.timeouts.push_back(
            {.deadline = h.clock.Now() + delay, .seq = h.timeout_seq++, .handle = {}});
        h.timeouts[id].handle = h.loop->AddTimeout(delay, [&h, id] {
          Harness::Timeout& t = h.timeouts[id];
          IOLOOP_FUZZ_CHECK(!t.removed);
          IOLOOP_FUZZ_CHECK(t.deadline <= h.clock.Now());
          ++t.fired;
          h.fired_this_step.push_back(id);
        });
        break;
      }
      case 5:
        if (!h.timeouts.empty()) {
          Harness::Timeout& t = h.timeouts[in.Below(static_cast<uint32_t>(h.timeouts.size()))];
          h.loop->RemoveTimeout(t.handle);
          if (t.fired == 0) t.removed = true;
        }
        break;
      case 6:
        h.poller->Inject(fd, in.Below(2) ? ioloop::kRead : ioloop::kRead | ioloop::kWrite);
        break;
      case 7:
        h.clock.Advance(absl::Milliseconds(in.Below(20)));
        break;
      case 8:
        h.Step();
        break;
    }
  }
  h.Step();
  h.Step();  // Callbacks queued during the last dispatch run here.
  for (int runs : h.callback_runs) IOLOOP_FUZZ_CHECK(runs == 1);
  for (const Harness::Timeout& t : h.timeouts) {
    IOLOOP_FUZZ_CHECK(t.fired <= 1);
    if (!t.removed && t.deadline <= h.clock.Now()) {
      IOLOOP_FUZZ_CHECK(t.fired == 1);
    }
  }
  return 0;
}
