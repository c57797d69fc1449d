// Fuzzes the io_uring poller's CompletionIo (backends/completion_io.h) against a model.
//
// A few socket pairs, each with a multishot receive (RecvMany) whose callback takes as
// many bytes as the program allows it (so it pauses the receive), may resume it from
// inside the call, or is paused and resumed from outside; peers write runs of a known
// pattern and may close; receives are cancelled and started again on new sockets;
// the poller has only four receive buffers, so bursts run its pool dry. Properties:
// every socket's bytes arrive whole, in order and once, its EOF only after all of
// them, nothing after the EOF or after a cancel; and once everything is resumed and
// every peer closed, every receive ends with its EOF. Destroying the poller at the end
// with operations in the kernel must free everything (ASan/LSan).
//
// Each input is a program: one byte picks the action, the next ones its operands.
// Where the kernel refuses io_uring, or lacks what CompletionIo needs, it runs nothing.

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "backends/completion_io.h"
#include "backends/io_uring/io_uring_poller.h"
#include "fuzz/fuzz_input.h"

namespace ioloop::fuzz {
namespace {

constexpr int kSockets = 3;
constexpr unsigned kPoolBuffers = 4;
constexpr size_t kUnlimited = SIZE_MAX;

uint8_t PatternAt(uint64_t offset) { return static_cast<uint8_t>(offset % 251); }

struct Socket {
  int local = -1;  // The receiving end (the poller's).
  int peer = -1;   // The writing end; -1 once closed.
  uint64_t sent = 0;
  uint64_t got = 0;
  CompletionIo::OpId op = 0;
  uint64_t generation = 0;      // Which Open() of this slot the receive belongs to.
  size_t budget = kUnlimited;   // Bytes the callback still takes.
  bool resume_in_call = false;  // On a short take, give more budget and Resume() inside.
  bool ended = false;
};

class Harness {
 public:
  Harness(Poller& poller, CompletionIo& io) : poller_(poller), io_(io) {}
  ~Harness() {
    for (Socket& s : sockets_) CloseFds(s);
  }

  void Open(int i) {
    Socket& s = sockets_[i];
    CloseFds(s);
    s = Socket{};
    int fds[2];
    IOLOOP_FUZZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, fds) == 0);
    s.local = fds[0];
    s.peer = fds[1];
    s.generation = ++generations_;
    s.op = io_.RecvMany(s.local, 1 + i * 3000,
                        [this, i, generation = s.generation](int result, absl::string_view data) {
                          // Never called again once cancelled (its socket slot reopened).
                          IOLOOP_FUZZ_CHECK(sockets_[i].generation == generation);
                          return OnRecv(i, result, data);
                        });
  }

  void Write(int i, size_t n) {
    Socket& s = sockets_[i];
    if (s.peer < 0) return;
    std::vector<char> bytes(n);
    for (size_t k = 0; k < n; ++k) bytes[k] = static_cast<char>(PatternAt(s.sent + k));
    const ssize_t written = write(s.peer, bytes.data(), n);
    if (written > 0) s.sent += static_cast<uint64_t>(written);
  }

  void ClosePeer(int i) {
    Socket& s = sockets_[i];
    if (s.peer >= 0) close(s.peer);
    s.peer = -1;
  }

  void SetBudget(int i, size_t budget, bool resume_in_call) {
    sockets_[i].budget = budget;
    sockets_[i].resume_in_call = resume_in_call;
  }

  void Pause(int i) { io_.Pause(sockets_[i].op); }
  void Resume(int i) { io_.Resume(sockets_[i].op); }

  // CancelAndReopen(): drops socket i's receive (no call may follow) and starts afresh.
  void CancelAndReopen(int i) {
    io_.Cancel(sockets_[i].op);
    Open(i);
  }

  void Step(absl::Duration wait) {
    std::vector<PollEvent> ready;
    IOLOOP_FUZZ_CHECK(poller_.Poll(wait, ready).ok());
    io_.RunCompleted([](absl::FunctionRef<void()> f) { f(); });
  }

  // Drain(): every peer closed, every receive resumed with an unlimited budget: each
  // must end with its EOF after all its bytes.
  void Drain() {
    for (int i = 0; i < kSockets; ++i) {
      ClosePeer(i);
      SetBudget(i, kUnlimited, false);
      Resume(i);
    }
    for (int round = 0; round < 2000 && !AllEnded(); ++round) Step(absl::Milliseconds(1));
    for (const Socket& s : sockets_) {
      IOLOOP_FUZZ_CHECK(s.ended);
      IOLOOP_FUZZ_CHECK(s.got == s.sent);
    }
  }

 private:
  size_t OnRecv(int i, int result, absl::string_view data) {
    Socket& s = sockets_[i];
    IOLOOP_FUZZ_CHECK(!s.ended);  // Nothing after the end.
    if (result <= 0) {
      IOLOOP_FUZZ_CHECK(result == 0);      // A socket pair fails in no other way here.
      IOLOOP_FUZZ_CHECK(s.peer < 0);       // EOF only once the peer closed...
      IOLOOP_FUZZ_CHECK(s.got == s.sent);  // ...and after every byte.
      s.ended = true;
      return 0;
    }
    IOLOOP_FUZZ_CHECK(data.size() == static_cast<size_t>(result));
    IOLOOP_FUZZ_CHECK(s.got + data.size() <= s.sent);  // No byte twice, none invented.
    size_t take = std::min(s.budget, data.size());
    for (size_t k = 0; k < take; ++k) {
      IOLOOP_FUZZ_CHECK(static_cast<uint8_t>(data[k]) == PatternAt(s.got + k));  // In order.
    }
    s.got += take;
    if (s.budget != kUnlimited) s.budget -= take;
    if (take < data.size() && s.resume_in_call) {
      s.budget = data.size() - take;  // Room made: the rest must be offered at once.
      s.resume_in_call = false;
      io_.Resume(s.op);
    }
    return take;
  }

  bool AllEnded() const {
    return std::all_of(sockets_.begin(), sockets_.end(), [](const Socket& s) { return s.ended; });
  }

  static void CloseFds(Socket& s) {
    if (s.peer >= 0) close(s.peer);
    if (s.local >= 0) close(s.local);
    s.peer = s.local = -1;
  }

  Poller& poller_;
  CompletionIo& io_;
  std::array<Socket, kSockets> sockets_;
  uint64_t generations_ = 0;
};

bool Available() {
  static const bool available = [] {
    auto poller = NewIoUringPollerForTesting(kPoolBuffers);
    const bool ok = poller.ok() && (*poller)->completion_io() != nullptr;
    if (!ok) std::fprintf(stderr, "completion_io fuzzer: no CompletionIo here, running nothing\n");
    return ok;
  }();
  return available;
}

void Run(FuzzInput& in) {
  if (!Available()) return;
  auto made = NewIoUringPollerForTesting(kPoolBuffers);
  IOLOOP_FUZZ_CHECK(made.ok());
  std::unique_ptr<Poller> poller = *std::move(made);
  {
    Harness h(*poller, *poller->completion_io());
    for (int i = 0; i < kSockets; ++i) h.Open(i);
    for (int steps = 0; !in.done() && steps < 400; ++steps) {
      const int i = static_cast<int>(in.Below(kSockets));
      switch (in.Below(8)) {
        case 0:
          h.Write(i, 1 + in.Below(200) * 37);
          break;
        case 1: {
          const uint32_t kind = in.Below(4);
          h.SetBudget(i, kind == 0 ? kUnlimited : in.Below(64) * (kind == 1 ? 1 : 97), kind == 3);
          break;
        }
        case 2:
          h.Pause(i);
          break;
        case 3:
          h.Resume(i);
          break;
        case 4:
        case 5:
          h.Step(in.Below(2) == 0 ? absl::ZeroDuration() : absl::Milliseconds(1));
          break;
        case 6:
          h.ClosePeer(i);
          break;
        case 7:
          if (in.Below(4) == 0) h.CancelAndReopen(i);
          break;
      }
    }
    if (in.Below(4) != 0) h.Drain();  // Else: destroyed with operations in the kernel.
  }
  poller.reset();
}

}  // namespace
}  // namespace ioloop::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ioloop::fuzz::FuzzInput in(data, size);
  ioloop::fuzz::Run(in);
  return 0;
}
