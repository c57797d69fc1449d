// Fuzzes the IOLoop on FakePoller + FakeClock against a model. Random sequences of
// AddHandler / UpdateHandler / RemoveHandler / AddCallback / AddTimeout /
// RemoveTimeout / inject-event / advance / run / close, where
//   - handlers remove, replace (fd reuse) or add handlers mid-dispatch;
//   - every callback, timeout and handler owns a token whose destructor re-enters the
//     loop when the loop destroys it (cancels its own or another timeout, adds a
//     timeout or a callback, removes a handler);
//   - deadlines and delays include the infinities and values beyond the int64
//     nanosecond range, and fds include INT_MAX and the dense table's edge;
//   - the input may end with Close() or the loop's destruction with work pending;
// must keep these properties:
//   - a removed handler is never called;
//   - no event reaches a registration made after the event was collected;
//   - every callback runs exactly once, unless the loop was closed first (then never);
//   - timeouts fire at most once, never when removed, only when due, in (deadline,
//     insertion) order within an iteration, and every due one fires;
//   - every callable the loop was given is destroyed exactly once.

#include <climits>
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
// Above the loop's dense fd table (2^20): kept in its hash map.
constexpr int kHugeFds[] = {INT_MAX, INT_MAX - 1, (1 << 20) + 1, 1 << 20};

struct Harness;

// Token: owned by a callable given to the loop; its destructor reports to the harness
// and carries out `action` against the loop (the re-entrancy the loop must survive).
// 16 bytes, so a lambda capturing only a token fits AnyInvocable's inline storage.
struct Token {
  Harness* h;
  uint32_t id;
  uint8_t action;
  Token(Harness* harness, uint32_t token_id, uint8_t token_action)
      : h(harness), id(token_id), action(token_action) {}
  Token(Token&& other) noexcept : h(other.h), id(other.id), action(other.action) {
    other.h = nullptr;
  }
  Token& operator=(Token&&) = delete;
  ~Token();
};

struct Harness {
  ioloop::testing::FakeClock clock;
  ioloop::testing::FakePoller* poller = nullptr;
  std::unique_ptr<IOLoop> loop;
  IOLoop* raw_loop = nullptr;  // Valid while ~IOLoop runs, unlike `loop`.
  bool closing = false;        // Close() or ~IOLoop has begun: nothing runs any more.

  // fd -> registration number currently live (0: none).
  std::map<int, uint64_t> live;
  uint64_t next_registration = 1;
  uint64_t registrations_at_poll = 0;  // Registrations made before the last poll.
  std::vector<uint8_t> actions;        // per registration: what its handler does

  struct CallbackRecord {
    int runs = 0;
    bool added_while_closing = false;
  };
  std::vector<CallbackRecord> callbacks;
  struct Timeout {
    absl::Time deadline;
    uint64_t seq;
    bool removed = false;
    int fired = 0;
    ioloop::TimeoutHandle handle;
  };
  std::vector<Timeout> timeouts;
  std::vector<size_t> fired_this_iteration;
  uint64_t timeout_seq = 0;

  std::vector<int> destroyed;            // per token
  std::vector<uint32_t> token_timeout;   // per token: its timeout's index, or ~0u
  std::vector<uint32_t> token_callback;  // per token: its callback's index, or ~0u

  uint32_t NewToken(uint32_t timeout = ~0u) {
    destroyed.push_back(0);
    token_timeout.push_back(timeout);
    return static_cast<uint32_t>(destroyed.size() - 1);
  }

  void Add(int fd, EventMask events, uint8_t action, uint8_t token_action) {
    const uint64_t r = next_registration++;
    Token token(this, NewToken(), token_action);
    auto handler = [this, r, fd, token = std::move(token)](int got_fd, EventMask) {
      IOLOOP_FUZZ_CHECK(!closing);
      IOLOOP_FUZZ_CHECK(got_fd == fd);
      IOLOOP_FUZZ_CHECK(live[fd] == r);              // Never a removed handler.
      IOLOOP_FUZZ_CHECK(r < registrations_at_poll);  // Never an event older than it.
      OnHandler(fd, r);
    };
    const bool was_live = live[fd] != 0;
    // A refused handler is destroyed inside AddHandler(): its token may remove handlers.
    const bool ok = raw_loop->AddHandler(fd, std::move(handler), events).ok();
    if (ok) {
      IOLOOP_FUZZ_CHECK(!closing && !was_live);
      live[fd] = r;
      if (actions.size() <= r) actions.resize(r + 1);
      actions[r] = action;
    } else {
      IOLOOP_FUZZ_CHECK(closing || was_live);  // Only a registered fd may be refused.
    }
  }

  void Remove(int fd) {
    // The model forgets it first: the handler's destructor runs inside RemoveHandler()
    // and may remove handlers itself.
    const bool was_live = live[fd] != 0;
    live[fd] = 0;
    const bool ok = raw_loop->RemoveHandler(fd).ok();
    IOLOOP_FUZZ_CHECK(ok == was_live);
  }

  // Callbacks capture only their token (16 bytes: stored inline in the loop's
  // callable); timeouts and handlers capture more (stored on the heap).
  void AddCallback(uint8_t token_action) {
    const uint32_t token = NewToken();
    token_callback.resize(destroyed.size(), ~0u);
    token_callback[token] = static_cast<uint32_t>(callbacks.size());
    callbacks.push_back({0, closing});
    raw_loop->AddCallback([token = Token(this, token, token_action)] {
      Harness& h = *token.h;
      IOLOOP_FUZZ_CHECK(!h.closing);
      ++h.callbacks[h.token_callback[token.id]].runs;
    });
  }

  // AddTimeoutWith() registers a timeout through `add` (one of AddTimeout()'s forms)
  // and models it as due at `model_deadline`.
  template <typename Add>
  void AddTimeoutWith(absl::Time model_deadline, uint8_t token_action, Add add) {
    const size_t id = timeouts.size();
    timeouts.push_back({.deadline = model_deadline, .seq = timeout_seq++, .handle = {}});
    if (closing) timeouts[id].removed = true;  // Never fires: the loop is going away.
    Token token(this, NewToken(static_cast<uint32_t>(id)), token_action);
    timeouts[id].handle = add([this, id, token = std::move(token)] {
      IOLOOP_FUZZ_CHECK(!closing);
      Timeout& t = timeouts[id];
      IOLOOP_FUZZ_CHECK(!t.removed);
      IOLOOP_FUZZ_CHECK(t.deadline <= clock.Now());
      ++t.fired;
      fired_this_iteration.push_back(id);
    });
  }

  void AddTimeoutIn(absl::Duration delay, uint8_t token_action) {
    // The clock moves only between runs, so the loop's cached time is clock.Now().
    AddTimeoutWith(clock.Now() + delay, token_action,
                   [&](ioloop::Callback cb) { return raw_loop->AddTimeout(delay, std::move(cb)); });
  }

  void AddTimeoutAt(absl::Time model_deadline, absl::Time deadline, uint8_t token_action) {
    AddTimeoutWith(model_deadline, token_action, [&](ioloop::Callback cb) {
      return raw_loop->AddTimeout(deadline, std::move(cb));
    });
  }

  void AddTimeoutAfter(absl::Time model_deadline, absl::Duration delay, uint8_t token_action) {
    AddTimeoutWith(model_deadline, token_action,
                   [&](ioloop::Callback cb) { return raw_loop->AddTimeout(delay, std::move(cb)); });
  }

  void RemoveTimeout(size_t index) {
    const bool fired = timeouts[index].fired != 0;
    // The cancelled callable's destructor may add timeouts (and grow `timeouts`).
    raw_loop->RemoveTimeout(timeouts[index].handle);
    if (!fired) timeouts[index].removed = true;
  }

  // What a destroyed token does to the loop.
  void OnDestroyed(uint32_t id, uint8_t action) {
    ++destroyed[id];
    const uint32_t pick = action >> 3;
    switch (action & 7) {
      case 1:  // Cancel its own timeout (a no-op once it fired or was removed).
        if (token_timeout[id] != ~0u) RemoveTimeout(token_timeout[id]);
        break;
      case 2:  // Cancel another timeout.
        if (!timeouts.empty()) RemoveTimeout(pick % timeouts.size());
        break;
      case 3:  // Add a timeout.
        AddTimeoutIn(absl::Milliseconds(static_cast<int>(pick % 8)), 0);
        break;
      case 4:  // Add a callback.
        AddCallback(0);
        break;
      case 5:  // Remove a handler.
        Remove(kFirstFd + static_cast<int>(pick % kFds));
        break;
      case 6:  // Add a timeout whose own destructor cancels another: a chain.
        AddTimeoutIn(absl::Milliseconds(static_cast<int>(pick % 8)), 2);
        break;
      default:
        break;
    }
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
        Add(other, ioloop::kRead | ioloop::kWrite, static_cast<uint8_t>(action + 4), action);
        break;
      case 3:
        Remove(fd);
        break;
    }
  }

  // Timeouts of one iteration fire in (deadline, insertion) order.
  void CheckIterationOrder() {
    for (size_t i = 1; i < fired_this_iteration.size(); ++i) {
      const Timeout& a = timeouts[fired_this_iteration[i - 1]];
      const Timeout& b = timeouts[fired_this_iteration[i]];
      IOLOOP_FUZZ_CHECK(a.deadline < b.deadline || (a.deadline == b.deadline && a.seq < b.seq));
    }
    fired_this_iteration.clear();
  }

  void Step() {
    poller->SetPollHook([this](absl::Duration) {
      CheckIterationOrder();
      registrations_at_poll = next_registration;
      raw_loop->Stop();
    });
    fired_this_iteration.clear();
    loop->Start();
    CheckIterationOrder();
  }
};

Token::~Token() {
  if (h != nullptr) h->OnDestroyed(id, action);
}

// Deadlines and delays at the edges of what the loop's integer time can hold.
void AddEdgeTimeout(Harness& h, uint32_t which, uint8_t token_action) {
  const absl::Duration huge = absl::Hours(24.0 * 365 * 1e9);
  const absl::Time past = absl::InfinitePast();
  const absl::Time never = absl::InfiniteFuture();
  switch (which % 7) {
    case 0:
      h.AddTimeoutAt(past, absl::InfinitePast(), token_action);
      break;
    case 1:
      h.AddTimeoutAt(never, absl::InfiniteFuture(), token_action);
      break;
    case 2:
      h.AddTimeoutAfter(past, -absl::InfiniteDuration(), token_action);
      break;
    case 3:
      h.AddTimeoutAfter(never, absl::InfiniteDuration(), token_action);
      break;
    case 4:
      h.AddTimeoutAfter(past, -huge, token_action);
      break;
    case 5:
      h.AddTimeoutAfter(never, huge, token_action);
      break;
    case 6:  // Beyond int64 nanoseconds since the epoch: saturates to "never".
      h.AddTimeoutAt(never, absl::FromUnixSeconds(int64_t{1} << 40), token_action);
      break;
  }
}

int PickFd(ioloop::fuzz::FuzzInput& in) {
  if (in.Below(8) == 0) return kHugeFds[in.Below(4)];
  return kFirstFd + static_cast<int>(in.Below(kFds));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ioloop::fuzz::FuzzInput in(data, size);
  Harness h;
  // Time moves only by op; fd numbers are the model's own (INT_MAX included).
  auto poller = std::make_unique<ioloop::testing::FakePoller>(
      nullptr, ioloop::testing::FakePoller::FdCheck::kAnyNumber);
  h.poller = poller.get();
  IOLoop::Options options;
  options.poller = std::move(poller);
  options.clock = &h.clock;
  options.log_handler = [](absl::string_view) {};
  h.loop = std::make_unique<IOLoop>(std::move(options));
  h.raw_loop = h.loop.get();
  // Keeps every poll timeout finite (the fake refuses to sleep forever).
  h.loop->AddTimeout(absl::Hours(1000000), [] {});

  int ending = 0;  // 0: run to the end; 1: Close() with work pending; 2: destroy.
  while (!in.done() && ending == 0) {
    const int fd = PickFd(in);
    switch (in.Below(11)) {
      case 0: {
        const EventMask events = in.Below(2) ? ioloop::kRead : ioloop::kRead | ioloop::kWrite;
        const uint8_t action = in.Byte();
        h.Add(fd, events, action, in.Byte());
        break;
      }
      case 1: {
        const bool ok = h.loop->UpdateHandler(fd, ioloop::kWrite).ok();
        IOLOOP_FUZZ_CHECK(ok == (h.live[fd] != 0));
        break;
      }
      case 2:
        h.Remove(fd);
        break;
      case 3:
        h.AddCallback(in.Byte());
        break;
      case 4: {
        const absl::Duration delay = absl::Milliseconds(static_cast<int>(in.Below(40)) - 5);
        h.AddTimeoutIn(delay, in.Byte());
        break;
      }
      case 5:
        if (!h.timeouts.empty())
          h.RemoveTimeout(in.Below(static_cast<uint32_t>(h.timeouts.size())));
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
      case 9: {
        const uint32_t which = in.Byte();
        AddEdgeTimeout(h, which, in.Byte());
        break;
      }
      case 10:
        ending = 1 + static_cast<int>(in.Below(2));
        break;
    }
  }

  if (ending == 0) {
    // Run until quiet: work queued by the last dispatch, and by destructors of work
    // that ran in the final phase of a run, runs in the next.
    for (int quiet_steps = 0; quiet_steps < 2;) {
      uint64_t before = 0;
      for (const Harness::CallbackRecord& c : h.callbacks) before += c.runs;
      for (const Harness::Timeout& t : h.timeouts) before += t.fired;
      h.Step();
      uint64_t after = 0;
      for (const Harness::CallbackRecord& c : h.callbacks) after += c.runs;
      for (const Harness::Timeout& t : h.timeouts) after += t.fired;
      quiet_steps = after == before ? quiet_steps + 1 : 0;
    }
    for (const Harness::CallbackRecord& c : h.callbacks) IOLOOP_FUZZ_CHECK(c.runs == 1);
    for (const Harness::Timeout& t : h.timeouts) {
      IOLOOP_FUZZ_CHECK(t.fired <= 1);
      if (!t.removed && t.deadline <= h.clock.Now()) IOLOOP_FUZZ_CHECK(t.fired == 1);
    }
  }
  // Close or destroy with whatever is pending: nothing more may run, and every
  // callable is destroyed exactly once (token destructors keep re-entering).
  h.closing = true;
  for (auto& [fd, registration] : h.live) registration = 0;  // The loop forgets them first.
  if (ending == 1) IOLOOP_FUZZ_CHECK(h.loop->Close().ok());
  h.loop.reset();
  for (int d : h.destroyed) IOLOOP_FUZZ_CHECK(d == 1);
  for (const Harness::CallbackRecord& c : h.callbacks) {
    IOLOOP_FUZZ_CHECK(c.runs <= 1);
    if (c.added_while_closing) IOLOOP_FUZZ_CHECK(c.runs == 0);
  }
  for (const Harness::Timeout& t : h.timeouts) IOLOOP_FUZZ_CHECK(t.fired <= 1);
  return 0;
}
