// Fuzzes every real backend of the platform (io_uring too, where the kernel allows it) with random
// Register / Modify / Unregister on real socketpairs against a model of what must be reported: a
// registered fd watched for kRead with data pending reports kRead, one watched for
// kWrite reports kWrite (a socketpair with room is writable), an unregistered fd
// reports nothing, and the statuses match the model (AlreadyExists, NotFound).
//
// One allowance: io_uring's one-shot poll records readiness when the fd becomes ready,
// so data written and then read back between two Poll() calls may still be reported
// as kRead once (a spurious wake-up; the read finds nothing). The model accepts that
// extra kRead on io_uring only for an fd that had data at some point since the last
// Poll().

#include <sys/socket.h>
#include <unistd.h>

#include <map>
#include <memory>
#include <vector>

#include "backends/default_poller.h"
#include "fuzz/fuzz_input.h"

namespace {

constexpr int kPairs = 6;

struct Fixture {
  std::vector<int> fds;  // [2i] watched end, [2i+1] peer.
  Fixture() {
    for (int i = 0; i < kPairs; ++i) {
      int p[2];
      socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, p);
      fds.push_back(p[0]);
      fds.push_back(p[1]);
    }
  }
  ~Fixture() {
    for (int fd : fds) close(fd);
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ioloop;
  fuzz::FuzzInput in(data, size);
  const std::vector<absl::string_view> names = AvailablePollers();
  auto made = NewPoller(names[in.Below(static_cast<uint32_t>(names.size()))]);
  IOLOOP_FUZZ_CHECK(made.ok());
  std::unique_ptr<Poller> poller = *std::move(made);
  Fixture f;
  std::map<int, EventMask> registered;
  std::map<int, int> pending;    // Bytes waiting on each watched end.
  std::map<int, bool> had_data;  // pending[fd] > 0 at some point since the last Poll().
  const bool stale_reads_allowed = poller->Name() == "io_uring";
  while (!in.done()) {
    const int pair = static_cast<int>(in.Below(kPairs));
    const int fd = f.fds[2 * pair];
    const EventMask events = static_cast<EventMask>(in.Below(4) & 1 ? kRead : 0) |
                             static_cast<EventMask>(in.Below(4) & 2 ? kWrite : 0);
    switch (in.Below(6)) {
      case 0: {
        const absl::Status s = poller->Register(fd, events);
        if (registered.count(fd)) {
          IOLOOP_FUZZ_CHECK(s.code() == absl::StatusCode::kAlreadyExists);
        } else {
          IOLOOP_FUZZ_CHECK(s.ok());
          registered[fd] = events;
        }
        break;
      }
      case 1: {
        const absl::Status s = poller->Modify(fd, events);
        IOLOOP_FUZZ_CHECK(s.ok() == (registered.count(fd) == 1));
        if (s.ok()) registered[fd] = events;
        break;
      }
      case 2: {
        const absl::Status s = poller->Unregister(fd);
        IOLOOP_FUZZ_CHECK(s.ok() == (registered.erase(fd) == 1));
        break;
      }
      case 3:
        if (write(f.fds[2 * pair + 1], "d", 1) == 1) {
          ++pending[fd];
          had_data[fd] = true;
        }
        break;
      case 4: {
        char buf[64];
        const ssize_t n = read(fd, buf, sizeof buf);
        if (n > 0) pending[fd] -= static_cast<int>(n);
        break;
      }
      case 5: {
        std::vector<PollEvent> ready;
        IOLOOP_FUZZ_CHECK(poller->Poll(absl::ZeroDuration(), ready).ok());
        std::map<int, EventMask> seen;
        for (const PollEvent& e : ready) {
          IOLOOP_FUZZ_CHECK(seen.count(e.fd) == 0);  // One event per fd.
          seen[e.fd] = e.events;
        }
        for (int i = 0; i < kPairs; ++i) {
          const int w = f.fds[2 * i];
          auto it = registered.find(w);
          const EventMask got = seen.count(w) ? seen[w] : kNone;
          if (it == registered.end()) {
            IOLOOP_FUZZ_CHECK(got == kNone);
            continue;
          }
          EventMask expected = kNone;
          if ((it->second & kRead) && pending[w] > 0) expected |= kRead;
          if (it->second & kWrite) expected |= kWrite;
          const bool stale_read = stale_reads_allowed && had_data[w] && got == (expected | kRead);
          IOLOOP_FUZZ_CHECK(got == expected || stale_read);
        }
        for (int i = 0; i < kPairs; ++i) had_data[f.fds[2 * i]] = pending[f.fds[2 * i]] > 0;
        break;
      }
    }
  }
  return 0;
}
