// One suite, every backend this platform builds (on Linux: epoll, io_uring where the
// kernel allows it, poll, select).

#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "backends/default_poller.h"
#include "base/check.h"
#include "base/process_stats.h"
#include "gtest/gtest.h"
#include "testing/backends.h"
#include "testing/fd_pairs.h"

namespace ioloop {
namespace {

struct Pair {
  int a = -1, b = -1;
  ~Pair() {
    if (a >= 0) close(a);
    if (b >= 0) close(b);
  }
};

void MakeSocketPair(Pair& p) {
  int fds[2];
  ASSERT_TRUE(testing::MakeSocketPair(fds).ok());
  p.a = fds[0];
  p.b = fds[1];
}

void MakePipe(Pair& p) {  // a: read end, b: write end.
  int fds[2];
  ASSERT_TRUE(testing::MakePipe(fds).ok());
  p.a = fds[0];
  p.b = fds[1];
}

// Where backends differ, each one's documented behaviour (docs/backends.md).
struct Expectations {
  bool hangup_is_error;          // A peer's close also reports kError (select cannot).
  bool hangup_seen_unwatched;    // ...even on an fd registered for kNone.
  bool sees_closed_behind_back;  // An fd closed without Unregister() is reported once
                                 // (poll: POLLNVAL, select: EBADF); epoll forgets it with
                                 // the close, and io_uring's armed poll keeps it open.
  bool bounded_batch;            // One Poll() returns at most a batch; drain with more.
  bool below_fd_setsize_only;    // Register() refuses fds at or above FD_SETSIZE.
};

const Expectations& ExpectationsFor(absl::string_view backend) {
  static const auto* const table = new absl::flat_hash_map<std::string, Expectations>({
      {"epoll", {true, true, false, true, false}},
      {"io_uring", {true, true, false, false, false}},
      {"kqueue", {true, false, false, false, false}},
      {"poll", {true, true, true, false, false}},
      {"select", {false, false, true, false, true}},
  });
  auto it = table->find(backend);
  IOLOOP_CHECK(it != table->end(), absl::StrCat("no expectations for backend ", backend));
  return it->second;
}

class PollerConformanceTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    auto p = NewPoller(GetParam());
    ASSERT_TRUE(p.ok()) << p.status();
    poller_ = *std::move(p);
    ASSERT_EQ(poller_->Name(), GetParam());
  }

  const Expectations& expect() const { return ExpectationsFor(GetParam()); }

  // Polls once without blocking and returns what was ready.
  std::vector<PollEvent> PollNow() {
    std::vector<PollEvent> ready;
    EXPECT_TRUE(poller_->Poll(absl::ZeroDuration(), ready).ok());
    return ready;
  }

  EventMask EventsFor(const std::vector<PollEvent>& ready, int fd) {
    EventMask m = kNone;
    int seen = 0;
    for (const PollEvent& e : ready) {
      if (e.fd == fd) {
        m |= e.events;
        ++seen;
      }
    }
    EXPECT_LE(seen, 1) << "fd " << fd << " reported more than once in one Poll()";
    return m;
  }

  std::unique_ptr<Poller> poller_;
};

TEST_P(PollerConformanceTest, ArgumentErrorsAreClearStatuses) {
  Pair p;
  MakeSocketPair(p);
  absl::Status negative = poller_->Register(-1, kRead);
  EXPECT_EQ(negative.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(negative.message().find("-1"), absl::string_view::npos) << negative;

  EXPECT_EQ(poller_->Register(p.a, 0x100).code(), absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(poller_->Register(p.a, kRead).ok());
  absl::Status twice = poller_->Register(p.a, kRead);
  EXPECT_EQ(twice.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_NE(twice.message().find(absl::StrCat("fd ", p.a)), absl::string_view::npos) << twice;

  EXPECT_EQ(poller_->Modify(p.b, kRead).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(poller_->Unregister(p.b).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(poller_->Unregister(-3).code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(poller_->Unregister(p.a).ok());
  EXPECT_EQ(poller_->Unregister(p.a).code(), absl::StatusCode::kNotFound);
}

TEST_P(PollerConformanceTest, RegisteringAClosedFdFails) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  close(fds[0]);
  close(fds[1]);
  absl::Status s = poller_->Register(fds[0], kRead);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find(absl::StrCat("fd ", fds[0])), absl::string_view::npos) << s;
}

TEST_P(PollerConformanceTest, SocketPairReadableAndWritable) {
  Pair p;
  MakeSocketPair(p);
  ASSERT_TRUE(poller_->Register(p.a, kRead).ok());
  EXPECT_TRUE(PollNow().empty()) << "nothing written yet";
  ASSERT_EQ(write(p.b, "x", 1), 1);
  EXPECT_EQ(PollNow(), (std::vector<PollEvent>{{p.a, kRead}}));
  ASSERT_TRUE(poller_->Register(p.b, kWrite).ok());
  std::vector<PollEvent> ready = PollNow();
  EXPECT_EQ(EventsFor(ready, p.a), kRead);
  EXPECT_EQ(EventsFor(ready, p.b), kWrite);
}

TEST_P(PollerConformanceTest, PipeReadableAndWritable) {
  Pair p;
  MakePipe(p);
  ASSERT_TRUE(poller_->Register(p.a, kRead).ok());
  ASSERT_TRUE(poller_->Register(p.b, kWrite).ok());
  std::vector<PollEvent> ready = PollNow();
  EXPECT_EQ(EventsFor(ready, p.a), kNone);
  EXPECT_EQ(EventsFor(ready, p.b), kWrite);
  ASSERT_EQ(write(p.b, "x", 1), 1);
  ready = PollNow();
  EXPECT_EQ(EventsFor(ready, p.a), kRead);
}

TEST_P(PollerConformanceTest, PeerCloseIsReadableAndAnErrorWhereObservable) {
  for (bool use_pipe : {false, true}) {
    SCOPED_TRACE(use_pipe ? "pipe" : "socketpair");
    Pair p;
    use_pipe ? MakePipe(p) : MakeSocketPair(p);
    ASSERT_TRUE(poller_->Register(p.a, kRead).ok());
    close(p.b);
    p.b = -1;
    const EventMask m = EventsFor(PollNow(), p.a);
    EXPECT_TRUE(m & kRead) << "a reader must get to see the EOF; events " << m;
    if (expect().hangup_is_error) {
      EXPECT_TRUE(m & kError) << "events " << m;
    }
    char c;
    EXPECT_EQ(read(p.a, &c, 1), 0) << "EOF";
    ASSERT_TRUE(poller_->Unregister(p.a).ok());
  }
}

TEST_P(PollerConformanceTest, HangupOnFdWatchedForNothing) {
  Pair p;
  MakeSocketPair(p);
  ASSERT_TRUE(poller_->Register(p.a, kNone).ok());
  EXPECT_TRUE(PollNow().empty());
  close(p.b);
  p.b = -1;
  const EventMask m = EventsFor(PollNow(), p.a);
  if (expect().hangup_seen_unwatched) {
    EXPECT_EQ(m, kError);
  } else {
    EXPECT_EQ(m, kNone) << "documented limit: this backend cannot see it";
  }
}

TEST_P(PollerConformanceTest, ZeroTimeoutReturnsAtOnce) {
  Pair p;
  MakeSocketPair(p);
  ASSERT_TRUE(poller_->Register(p.a, kRead).ok());
  const absl::Time start = absl::Now();
  std::vector<PollEvent> ready;
  ASSERT_TRUE(poller_->Poll(absl::ZeroDuration(), ready).ok());
  ASSERT_TRUE(poller_->Poll(absl::Milliseconds(-5), ready).ok());
  EXPECT_TRUE(ready.empty());
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
}

TEST_P(PollerConformanceTest, FiniteTimeoutWaitsAtLeastThatLong) {
  Pair p;
  MakeSocketPair(p);
  ASSERT_TRUE(poller_->Register(p.a, kRead).ok());
  for (absl::Duration timeout : {absl::Milliseconds(30), absl::Microseconds(2500)}) {
    const absl::Time start = absl::Now();
    std::vector<PollEvent> ready;
    ASSERT_TRUE(poller_->Poll(timeout, ready).ok());
    const absl::Duration waited = absl::Now() - start;
    EXPECT_TRUE(ready.empty());
    // Rounded up, never down, so a timer's deadline is never missed by waking early.
    EXPECT_GE(waited, timeout);
    EXPECT_LT(waited, timeout + absl::Seconds(5)) << "generous bound for a loaded machine";
  }
}

TEST_P(PollerConformanceTest, InfiniteTimeoutReturnsOnEventFromAnotherThread) {
  Pair p;
  MakeSocketPair(p);
  ASSERT_TRUE(poller_->Register(p.a, kRead).ok());
  std::thread writer([&] { ASSERT_EQ(write(p.b, "x", 1), 1); });
  std::vector<PollEvent> ready;
  ASSERT_TRUE(poller_->Poll(absl::InfiniteDuration(), ready).ok());
  writer.join();
  EXPECT_EQ(ready, (std::vector<PollEvent>{{p.a, kRead}}));
}

TEST_P(PollerConformanceTest, ModifyFromReadToWriteAndBack) {
  Pair p;
  MakeSocketPair(p);
  ASSERT_TRUE(poller_->Register(p.a, kRead).ok());
  EXPECT_TRUE(PollNow().empty());
  ASSERT_TRUE(poller_->Modify(p.a, kWrite).ok());
  EXPECT_EQ(PollNow(), (std::vector<PollEvent>{{p.a, kWrite}}));
  ASSERT_TRUE(poller_->Modify(p.a, kRead).ok());
  EXPECT_TRUE(PollNow().empty());
  ASSERT_EQ(write(p.b, "x", 1), 1);
  EXPECT_EQ(PollNow(), (std::vector<PollEvent>{{p.a, kRead}}));
  ASSERT_TRUE(poller_->Modify(p.a, kRead | kWrite).ok());
  EXPECT_EQ(PollNow(), (std::vector<PollEvent>{{p.a, kRead | kWrite}}));
}

TEST_P(PollerConformanceTest, UnregisterStopsDelivery) {
  Pair p;
  MakeSocketPair(p);
  ASSERT_TRUE(poller_->Register(p.a, kRead | kWrite).ok());
  ASSERT_EQ(write(p.b, "x", 1), 1);
  EXPECT_EQ(PollNow().size(), 1u);
  ASSERT_TRUE(poller_->Unregister(p.a).ok());
  EXPECT_TRUE(PollNow().empty());
  // And the fd can be registered again afterwards.
  ASSERT_TRUE(poller_->Register(p.a, kRead).ok());
  EXPECT_EQ(PollNow(), (std::vector<PollEvent>{{p.a, kRead}}));
}

TEST_P(PollerConformanceTest, ClosedWhileRegisteredThenUnregisterSucceeds) {
  Pair p;
  MakeSocketPair(p);
  ASSERT_TRUE(poller_->Register(p.a, kRead).ok());
  close(p.a);
  const int closed = p.a;
  p.a = -1;
  std::vector<PollEvent> ready;
  ASSERT_TRUE(poller_->Poll(absl::ZeroDuration(), ready).ok());
  for (const PollEvent& e : ready) EXPECT_TRUE(e.events & kError) << "fd " << e.fd;
  EXPECT_TRUE(poller_->Unregister(closed).ok());
}

TEST_P(PollerConformanceTest, UnregisterThenCloseReallyCloses) {
  // io_uring: an armed poll holds a reference to the file, so Unregister() must drop
  // it before returning, or the peer would never see the close.
  Pair p;
  MakeSocketPair(p);
  ASSERT_TRUE(poller_->Register(p.a, kRead).ok());
  EXPECT_TRUE(PollNow().empty());  // Armed now, where a backend arms lazily.
  ASSERT_TRUE(poller_->Unregister(p.a).ok());
  close(p.a);
  p.a = -1;
  char c;
  EXPECT_EQ(read(p.b, &c, 1), 0) << "the peer sees EOF at once";
}

TEST_P(PollerConformanceTest, ReusedFdNumberSeesOnlyItsOwnEvents) {
  Pair old_pair;
  MakeSocketPair(old_pair);
  ASSERT_TRUE(poller_->Register(old_pair.a, kRead).ok());
  EXPECT_TRUE(PollNow().empty());
  ASSERT_EQ(write(old_pair.b, "x", 1), 1);  // Ready, not yet collected.
  const int number = old_pair.a;
  ASSERT_TRUE(poller_->Unregister(number).ok());
  close(old_pair.a);
  old_pair.a = -1;
  Pair fresh;
  MakeSocketPair(fresh);
  ASSERT_EQ(fresh.a, number) << "the kernel reuses the lowest free number";
  ASSERT_TRUE(poller_->Register(fresh.a, kRead).ok());
  EXPECT_TRUE(PollNow().empty()) << "the old file's readiness is not the new one's";
  ASSERT_EQ(write(fresh.b, "y", 1), 1);
  EXPECT_EQ(PollNow(), (std::vector<PollEvent>{{fresh.a, kRead}}));
}

TEST_P(PollerConformanceTest, HalfClosedPeerDoesNotSpinARegistrationNotReading) {
  // io_uring reports a peer's shutdown(SHUT_WR) to every poll, whatever its mask; a
  // backend that re-armed on it would spin. Nothing is reported, and a timed Poll()
  // sleeps rather than burning the CPU.
  Pair p;
  MakeSocketPair(p);
  ASSERT_TRUE(poller_->Register(p.a, kNone).ok());
  EXPECT_TRUE(PollNow().empty());
  ASSERT_EQ(shutdown(p.b, SHUT_WR), 0);
  timespec cpu_before, cpu_after;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu_before);
  std::vector<PollEvent> ready;
  ASSERT_TRUE(poller_->Poll(absl::Milliseconds(100), ready).ok());
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu_after);
  EXPECT_TRUE(ready.empty());
  const absl::Duration cpu =
      absl::DurationFromTimespec(cpu_after) - absl::DurationFromTimespec(cpu_before);
  EXPECT_LT(cpu, absl::Milliseconds(50)) << "a 100 ms Poll() spun";
  // It is still watched: asking for kWrite reports the (writable) socket.
  ASSERT_TRUE(poller_->Modify(p.a, kWrite).ok());
  EXPECT_EQ(PollNow(), (std::vector<PollEvent>{{p.a, kWrite}}));
  ASSERT_TRUE(poller_->Modify(p.a, kRead).ok());
  EXPECT_EQ(PollNow(), (std::vector<PollEvent>{{p.a, kRead}})) << "the EOF reads";
  // A full close is an error even on the parked registration.
  ASSERT_TRUE(poller_->Modify(p.a, kNone).ok());
  close(p.b);
  p.b = -1;
  const EventMask m = EventsFor(PollNow(), p.a);
  if (expect().hangup_is_error) {
    EXPECT_EQ(m, kError);
  }
}

TEST_P(PollerConformanceTest, ClosedBehindItsBackIsReportedAtMostOnceAndOthersServed) {
  Pair closed, other;
  MakeSocketPair(closed);
  MakeSocketPair(other);
  ASSERT_TRUE(poller_->Register(closed.a, kRead).ok());
  ASSERT_TRUE(poller_->Register(other.a, kRead).ok());
  EXPECT_TRUE(PollNow().empty());  // Armed, where a backend arms lazily.
  ASSERT_EQ(write(other.b, "x", 1), 1);
  const int number = closed.a;
  close(closed.a);  // Without Unregister(): the user's bug, which must not stall others.
  closed.a = -1;
  int reports = 0;
  for (int i = 0; i < 3; ++i) {
    const std::vector<PollEvent> ready = PollNow();
    EXPECT_EQ(EventsFor(ready, other.a), kRead) << "round " << i << ": the others are served";
    const EventMask m = EventsFor(ready, number);
    if (m != kNone) {
      ++reports;
      EXPECT_TRUE(m & kError) << m;
    }
  }
  EXPECT_EQ(reports, expect().sees_closed_behind_back ? 1 : 0);
  EXPECT_TRUE(poller_->Unregister(number).ok());
}

TEST_P(PollerConformanceTest, TenThousandRegisteredFds) {
  const rlim_t limit = base::RaiseFdLimit();
  const int wanted = 10000;
  if (limit < static_cast<rlim_t>(wanted + 100)) {
    GTEST_SKIP() << "RLIMIT_NOFILE " << limit << " is below " << wanted + 100;
  }
  std::vector<Pair> pairs(wanted / 2);
  for (Pair& p : pairs) MakeSocketPair(p);
  int registered = 0;
  int refused = 0;
  for (Pair& p : pairs) {
    for (int fd : {p.a, p.b}) {
      absl::Status s = poller_->Register(fd, kWrite);
      if (s.ok()) {
        ++registered;
      } else {
        ASSERT_TRUE(expect().below_fd_setsize_only) << s;
        ASSERT_GE(fd, FD_SETSIZE) << s;
        EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
        ++refused;
      }
    }
  }
  std::vector<PollEvent> ready;
  ASSERT_TRUE(poller_->Poll(absl::ZeroDuration(), ready).ok());
  if (expect().bounded_batch) {
    for (int i = 0; i < 100 && ready.size() < static_cast<size_t>(registered); ++i) {
      ready.clear();
      ASSERT_TRUE(poller_->Poll(absl::ZeroDuration(), ready).ok());
    }
  }
  EXPECT_EQ(ready.size(), static_cast<size_t>(registered));
  for (const PollEvent& e : ready) ASSERT_EQ(e.events, kWrite);
  if (expect().below_fd_setsize_only) {
    EXPECT_GT(refused, 0);
    EXPECT_LT(registered, FD_SETSIZE);
  } else {
    EXPECT_EQ(registered, wanted);
  }
}

void NoOpSignalHandler(int) {}

TEST_P(PollerConformanceTest, SignalInterruptsWaitWithOkAndNoEvents) {
  struct sigaction action = {};
  action.sa_handler = &NoOpSignalHandler;  // No SA_RESTART.
  struct sigaction old;
  ASSERT_EQ(sigaction(SIGUSR1, &action, &old), 0);
  Pair p;
  MakeSocketPair(p);
  ASSERT_TRUE(poller_->Register(p.a, kRead).ok());
  std::atomic<bool> returned{false};
  absl::Status status;
  std::vector<PollEvent> ready;
  std::thread poller_thread([&] {
    status = poller_->Poll(absl::InfiniteDuration(), ready);
    returned.store(true);
  });
  const pthread_t target = poller_thread.native_handle();
  // Retry until the signal lands while the thread is waiting; nothing else wakes it.
  while (!returned.load()) {
    pthread_kill(target, SIGUSR1);
    std::this_thread::yield();
  }
  poller_thread.join();
  sigaction(SIGUSR1, &old, nullptr);
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_TRUE(ready.empty());
}

INSTANTIATE_TEST_SUITE_P(EveryBackend, PollerConformanceTest,
                         ::testing::ValuesIn(testing::RealBackends()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace ioloop
